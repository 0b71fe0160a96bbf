//! A graceful stop while a notification is still being sent: the machine
//! has stopped (nothing runs, the state is written, `service stopped` is
//! published) and the notifier gets up to `autosync_notify::STOP_WITHIN`
//! to deliver what it holds. Until the service's run returns, the status
//! still answers (the API's `GET /api/v1/status`, `autosync status`), the
//! event stream stays open, and what would change anything is refused
//! `service-stopping`, saying that the last notifications are being sent.

use crate::support::*;
use autosync_service::{
    Command, Control, Published, RefusalCode, ServiceEvent, ServiceState, Status,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::{mpsc, oneshot};

/// A loopback webhook that accepts connections and answers none of them
/// until [`StuckHook::release`]; from then on it answers 200 to every
/// request, those it held included.
struct StuckHook {
    url: String,
    held: Arc<Mutex<Vec<TcpStream>>>,
    released: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl StuckHook {
    fn start() -> StuckHook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let held = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let (h, r, a) = (held.clone(), released.clone(), answered.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                // Checked under the lock `release` takes: a connection is
                // either held (and answered by `release`) or answered here.
                let mut held = h.lock().unwrap();
                if r.load(Ordering::SeqCst) {
                    drop(held);
                    answer(stream, &a);
                } else {
                    held.push(stream);
                }
            }
        });
        StuckHook {
            url,
            held,
            released,
            answered,
        }
    }

    /// How many connections it holds unanswered.
    fn holding(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Answers what it held, and every request from now on.
    fn release(&self) {
        let held = {
            let mut held = self.held.lock().unwrap();
            self.released.store(true, Ordering::SeqCst);
            std::mem::take(&mut *held)
        };
        for stream in held {
            answer(stream, &self.answered);
        }
    }

    /// The bodies of the requests it answered.
    fn answered(&self) -> Vec<serde_json::Value> {
        self.answered.lock().unwrap().clone()
    }
}

/// Reads one request (headers, then its body) and answers 200.
fn answer(mut stream: TcpStream, bodies: &Mutex<Vec<serde_json::Value>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_ok()
        && let Ok(json) = serde_json::from_slice(&body)
    {
        bodies.lock().unwrap().push(json);
    }
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
}

/// The service's status, or why it gave none (as the API then answers
/// `service-stopping`).
async fn status(commands: &mpsc::UnboundedSender<Command>) -> Result<Status, String> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::Status { reply })
        .map_err(|_| "the service no longer takes commands".to_owned())?;
    answer
        .await
        .map_err(|_| "the service dropped the status request unanswered".to_owned())
}

/// Waits for the machine's `service stopped` event.
async fn wait_stopped(events: &mut broadcast::Receiver<Published>) {
    loop {
        let published = tokio::time::timeout(EVENT_TIMEOUT, events.recv())
            .await
            .expect("no `service stopped` event")
            .expect("the event stream ended before `service stopped`");
        if let ServiceEvent::Service {
            state: ServiceState::Stopped,
            ..
        } = published.event
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_should_answer_until_the_service_has_sent_its_last_notifications() {
    let dir = converged_quickstart().await;
    let hook = StuckHook::start();
    edit_config(dir.path(), |t| {
        let t = hr_controller(
            &t,
            r#"triggers = []
retry = { max_attempts = 0, backoff = "1h", max_backoff = "1h" }"#,
        );
        global_controller(&t, &webhook_section(&hook.url))
    });
    let (service, _store) = service(dir.path());
    let mut events = service.subscribe();
    let commands = service.commands();
    let stop = service.shutdown_token();
    let handle = tokio::spawn(service.run(false));

    // A run fails; its notice is stuck in the webhook's connection.
    std::fs::remove_file(dir.path().join("data/hr.csv")).unwrap();
    let (reply, queued) = oneshot::channel();
    commands
        .send(Command::Queue {
            ma: "hr".into(),
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            by: "test".into(),
            reply,
        })
        .unwrap();
    queued.await.unwrap().unwrap();
    wait_for("a notice in the webhook's connection", || {
        hook.holding() > 0
    })
    .await;

    stop.cancel();
    wait_stopped(&mut events).await;

    // The machine has stopped; the notifier still sends (the webhook holds
    // it): the service answers its last status.
    let last = status(&commands).await;
    let last = last.unwrap_or_else(|e| panic!("no status during the last phase of the stop: {e}"));
    assert!(last.service);
    // It says the service is stopping: the retries it shows never come
    // from this process (a black-box review).
    assert!(last.stopping, "{last:#?}");
    assert!(
        matches!(
            Running::state(&last, "hr"),
            autosync_service::MaStateView::Failed { .. }
        ),
        "{last:#?}"
    );
    // What would change anything is refused, saying why.
    let (reply, refused) = oneshot::channel();
    commands
        .send(Command::Control {
            action: Control::Pause,
            ma: Some("hr".into()),
            by: "test".into(),
            reply,
        })
        .unwrap();
    let refusal = refused.await.unwrap().unwrap_err();
    assert_eq!(refusal.code, RefusalCode::ServiceStopping);
    assert!(
        refusal.message.contains("sending its last notifications"),
        "{}",
        refusal.message
    );
    // The event stream's followers are still connected.
    assert!(
        matches!(events.try_recv(), Err(TryRecvError::Empty)),
        "the event stream ended before the service"
    );
    assert!(!handle.is_finished());
    // Asked again: still answered (not a last answer given in passing).
    status(&commands).await.unwrap();

    // The notice is delivered: the service ends, and with it the stream.
    hook.release();
    tokio::time::timeout(EVENT_TIMEOUT, handle)
        .await
        .expect("the service did not stop")
        .unwrap()
        .unwrap();
    assert!(!hook.answered().is_empty(), "the stuck notice was sent");
    assert!(matches!(events.recv().await, Err(RecvError::Closed)));
    assert!(status(&commands).await.is_err());
}
