//! The file-watch trigger's tests: the events that count, the coalescing
//! window, and the watch kept on a folder removed, moved or replaced, on a
//! real filesystem.

use super::*;
use crate::TriggerRequest;
use crate::clock::SystemClock;
use crate::sink::TriggerEvent;
use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn event(kind: EventKind, path: &str) -> Event {
    Event::new(kind).add_path(PathBuf::from(path))
}

fn name() -> OsString {
    OsString::from("hr.csv")
}

/// A file watch on `path` with these windows, nothing ignored.
fn config(path: &str, debounce: &str, max_delay: &str) -> FileWatchConfig {
    FileWatchConfig {
        name: None,
        profile: "delta-import".into(),
        exclusive: false,
        run_immediate: false,
        path: Some(path.into()),
        debounce: debounce.parse().unwrap(),
        max_delay: max_delay.parse().unwrap(),
        ignore_attributes: Vec::new(),
        content: Provided::default(),
    }
}

#[test]
fn writes_creates_renames_and_removals_of_the_file_should_be_changes() {
    for kind in [
        EventKind::Create(CreateKind::File),
        EventKind::Modify(ModifyKind::Data(DataChange::Content)),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        EventKind::Remove(notify::event::RemoveKind::File),
    ] {
        assert!(
            is_change_of(&event(kind, "/data/hr.csv"), &name()),
            "{kind:?}"
        );
    }
}

#[test]
fn reads_of_the_file_should_not_be_changes_so_our_own_import_does_not_retrigger() {
    for kind in [
        EventKind::Access(AccessKind::Open(AccessMode::Read)),
        EventKind::Access(AccessKind::Close(AccessMode::Read)),
        // SQLite opens its database read-write even to read it.
        EventKind::Access(AccessKind::Open(AccessMode::Write)),
        EventKind::Access(AccessKind::Close(AccessMode::Write)),
        EventKind::Access(AccessKind::Read),
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
    ] {
        assert!(
            !is_change_of(&event(kind, "/data/hr.csv"), &name()),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn opening_the_real_file_read_write_without_writing_should_not_be_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.csv");
    std::fs::write(&path, "a\n").unwrap();
    let config = config(&path.to_string_lossy(), "1s", "5s");
    let trigger = config.validate("hr", 0, dir.path(), None).unwrap();
    let mut active = trigger.watch().unwrap();
    // What SQLite does to read its database: open read-write, read, close.
    {
        use std::io::Read as _;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
    }
    // Then a real write, so that the events end.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"b\n"))
        .unwrap();
    let mut before_write = Vec::new();
    loop {
        let event = active.events.recv().await.unwrap().unwrap();
        if matches!(event.kind, EventKind::Modify(ModifyKind::Data(_))) {
            assert!(is_change_of(&event, &trigger.file_name));
            break;
        }
        before_write.push(event);
    }
    assert!(
        before_write
            .iter()
            .any(|e| e.kind == EventKind::Access(AccessKind::Close(AccessMode::Write))),
        "the read-write open's close was reported: {before_write:?}"
    );
    for e in &before_write {
        assert!(!is_change_of(e, &trigger.file_name), "{e:?}");
    }
}

#[test]
fn changes_of_other_files_in_the_folder_should_be_ignored() {
    let e = event(EventKind::Create(CreateKind::File), "/data/other.csv");
    assert!(!is_change_of(&e, &name()));
    // A rename from a temporary file onto ours names both paths.
    let rename = event(
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
        "/data/.hr.csv.tmp",
    )
    .add_path("/data/hr.csv".into());
    assert!(is_change_of(&rename, &name()));
}

#[test]
fn a_max_delay_shorter_than_the_debounce_should_be_rejected() {
    let config = config("hr.csv", "2s", "1s");
    let err = config
        .validate("hr", 0, Path::new("/cfg"), None)
        .unwrap_err();
    assert_eq!(err.key, "max_delay");
    let no_path = FileWatchConfig {
        path: None,
        ..config
    };
    assert_eq!(
        no_path
            .validate("hr", 0, Path::new("/cfg"), None)
            .unwrap_err()
            .key,
        "path"
    );
    let t = no_path.validate("hr", 0, Path::new("/cfg"), Some(Path::new("data/hr.csv")));
    assert!(t.is_err(), "still rejected for max_delay");
}

#[tokio::test(start_paused = true)]
async fn a_steady_stream_of_writes_should_still_ask_every_max_delay() {
    let config = config("data/hr.csv", "1s", "5s");
    let trigger = config.validate("hr", 0, Path::new("/cfg"), None).unwrap();
    assert_eq!(trigger.folder, PathBuf::from("/cfg/data"));
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let (tx, mut rx) = mpsc::unbounded_channel::<TriggerRequest>();
    let cancel = CancellationToken::new();
    let start = tokio::time::Instant::now();
    let runner = {
        let cancel = cancel.clone();
        tokio::spawn(async move { trigger.run_with(event_rx, &SystemClock, &tx, &cancel).await })
    };
    let writer = tokio::spawn(async move {
        for _ in 0..30 {
            let write = event(
                EventKind::Modify(ModifyKind::Data(DataChange::Content)),
                "/cfg/data/hr.csv",
            );
            event_tx.send(Ok(write)).unwrap();
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        event_tx // keep the stream open
    });
    rx.recv().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    rx.recv().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(10_200),
        "5 s after the next burst's first write"
    );
    let _open = writer.await.unwrap();
    rx.recv().await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(12_600),
        "the tail of the stream fires after the window"
    );
    cancel.cancel();
    runner.await.unwrap();
}

/// A trigger on the real file `path` with short windows, checks and
/// retries, so that each step of a test takes well under a second.
fn quick(path: &Path) -> FileWatchTrigger {
    let config = config(&path.to_string_lossy(), "50ms", "200ms");
    let mut trigger = config.validate("hr", 0, Path::new("/"), None).unwrap();
    trigger.recheck = Duration::from_millis(100);
    trigger.retry = Duration::from_millis(400);
    trigger
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .unwrap();
}

/// A trigger running on the real filesystem, and what it told.
struct Running {
    events: mpsc::UnboundedReceiver<TriggerEvent>,
    errors: Vec<String>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Watches first, then runs on that watch (as a trigger set does).
    fn on_watch(trigger: FileWatchTrigger) -> Self {
        let active = trigger.watch().unwrap();
        let (tx, events) = mpsc::unbounded_channel::<TriggerEvent>();
        let cancel = CancellationToken::new();
        let task = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                trigger.run_on(active, &SystemClock, &tx, &cancel).await;
            })
        };
        Running {
            events,
            errors: Vec::new(),
            cancel,
            task,
        }
    }

    /// Runs with its own first watch (as a trigger set does when the
    /// folder could not be watched).
    fn run(trigger: FileWatchTrigger) -> Self {
        let (tx, events) = mpsc::unbounded_channel::<TriggerEvent>();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(trigger.run(Arc::new(SystemClock), Arc::new(tx), cancel.clone()));
        Running {
            events,
            errors: Vec::new(),
            cancel,
            task,
        }
    }

    /// The next request within `within` (`None`: none came), keeping
    /// the errors told before it.
    async fn request_within(&mut self, within: Duration) -> Option<TriggerRequest> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(TriggerEvent::Request(r))) => return Some(r),
                Ok(Some(TriggerEvent::Error(e))) => {
                    assert!(!e.stopped, "{}", e.message);
                    self.errors.push(e.message);
                }
                Ok(Some(TriggerEvent::State { .. })) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    async fn request(&mut self) -> TriggerRequest {
        self.request_within(Duration::from_secs(5))
            .await
            .expect("a request within 5 s")
    }

    /// Waits until no request came for half a second (a burst's
    /// requests are all in), so that the next request is the next
    /// change's.
    async fn settle(&mut self) {
        while self
            .request_within(Duration::from_millis(500))
            .await
            .is_some()
        {}
    }

    /// The next error told within 5 s (the test fails if a request
    /// comes first).
    async fn error(&mut self) -> String {
        let wait = async {
            loop {
                match self.events.recv().await {
                    Some(TriggerEvent::Error(e)) => {
                        assert!(!e.stopped, "{}", e.message);
                        return e.message;
                    }
                    Some(TriggerEvent::Request(r)) => panic!("unexpected request {r:?}"),
                    Some(TriggerEvent::State { .. }) => {}
                    None => panic!("the trigger ended"),
                }
            }
        };
        let message = tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("an error within 5 s");
        self.errors.push(message.clone());
        message
    }

    /// Cancels: the trigger ends promptly. Returns every error told.
    async fn stop(mut self) -> Vec<String> {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(1), &mut self.task)
            .await
            .expect("the trigger ends promptly when cancelled")
            .unwrap();
        while let Ok(event) = self.events.try_recv() {
            if let TriggerEvent::Error(e) = event {
                self.errors.push(e.message);
            }
        }
        self.errors
    }
}

#[tokio::test]
async fn a_folder_replaced_by_renames_should_be_watched_again_and_ask_for_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hr.csv"), "id\n1\n").unwrap();
    let mut running = Running::on_watch(quick(&data.join("hr.csv")));

    // cp -a data data.new; (change data.new/hr.csv); mv data data.old; mv data.new data
    let new = dir.path().join("data.new");
    std::fs::create_dir(&new).unwrap();
    std::fs::write(new.join("hr.csv"), "id\n1\n2\n").unwrap();
    std::fs::rename(&data, dir.path().join("data.old")).unwrap();
    std::fs::rename(&new, &data).unwrap();
    let request = running.request().await;
    assert_eq!(request.profile, "delta-import");
    assert_eq!(running.errors.len(), 1, "{:?}", running.errors);
    assert!(
        running.errors[0].contains(&format!("`{}`", data.display()))
            && running.errors[0].contains("replaced"),
        "{}",
        running.errors[0]
    );

    // The new folder is the one watched now.
    running.settle().await;
    append(&data.join("hr.csv"), "3\n");
    running.request().await;
    running.settle().await;
    append(&dir.path().join("data.old").join("hr.csv"), "4\n");
    assert_eq!(
        running.request_within(Duration::from_millis(500)).await,
        None,
        "the old folder is no longer watched"
    );
    let errors = running.stop().await;
    assert_eq!(errors.len(), 1, "the loss is told once: {errors:?}");
}

#[tokio::test]
async fn a_folder_removed_and_created_again_should_be_watched_again_and_ask_for_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    std::fs::write(incoming.join("hr.csv"), "id\n1\n").unwrap();
    let mut running = Running::on_watch(quick(&incoming.join("hr.csv")));

    // rm -rf incoming; mkdir incoming; cp hr.csv incoming/
    std::fs::remove_dir_all(&incoming).unwrap();
    std::fs::create_dir(&incoming).unwrap();
    std::fs::write(incoming.join("hr.csv"), "id\n1\n2\n").unwrap();
    running.request().await;
    running.settle().await;
    assert_eq!(running.errors.len(), 1, "{:?}", running.errors);
    assert!(
        running.errors[0].contains(&format!("`{}`", incoming.display())),
        "{}",
        running.errors[0]
    );

    append(&incoming.join("hr.csv"), "3\n");
    running.request().await;
    let errors = running.stop().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[tokio::test]
async fn a_folder_removed_for_a_while_should_be_watched_again_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    let mut running = Running::on_watch(quick(&incoming.join("hr.csv")));

    std::fs::remove_dir(&incoming).unwrap();
    let error = running.error().await;
    assert!(error.contains("was removed"), "{error}");
    // Still missing at the next retries: told every retry, nothing asked.
    assert_eq!(
        running.request_within(Duration::from_millis(1500)).await,
        None
    );
    assert!(running.errors.len() >= 2, "{:?}", running.errors);
    assert!(
        running.errors[1].starts_with("cannot watch folder"),
        "{:?}",
        running.errors
    );

    std::fs::create_dir(&incoming).unwrap();
    std::fs::write(incoming.join("hr.csv"), "id\n1\n").unwrap();
    running.request().await;
    running.settle().await;
    append(&incoming.join("hr.csv"), "2\n");
    running.request().await;
    running.stop().await;
}

#[tokio::test]
async fn a_parent_folder_replaced_should_be_seen_by_the_periodic_check() {
    // No event tells of it: the watched folder itself is neither moved
    // nor removed, the folder above it is.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("site").join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hr.csv"), "id\n1\n").unwrap();
    let mut running = Running::on_watch(quick(&data.join("hr.csv")));

    std::fs::rename(dir.path().join("site"), dir.path().join("site.old")).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hr.csv"), "id\n1\n2\n").unwrap();
    running.request().await;
    running.settle().await;
    assert_eq!(running.errors.len(), 1, "{:?}", running.errors);

    append(&data.join("hr.csv"), "3\n");
    running.request().await;
    running.stop().await;
}

#[tokio::test]
async fn a_file_created_while_its_folder_could_not_be_watched_should_be_imported() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    let mut running = Running::run(quick(&incoming.join("hr.csv")));
    let error = running.error().await;
    assert!(
        error.starts_with(&format!("cannot watch folder `{}`", incoming.display()))
            && error.ends_with("retrying in 400ms"),
        "{error}"
    );

    // mkdir incoming && cp hr.csv incoming/, before the watch is back.
    std::fs::create_dir(&incoming).unwrap();
    std::fs::write(incoming.join("hr.csv"), "id\n1\n").unwrap();
    running.request().await;
    running.settle().await;
    append(&incoming.join("hr.csv"), "2\n");
    running.request().await;
    let errors = running.stop().await;
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[tokio::test]
async fn the_first_watch_should_ask_for_nothing_while_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hr.csv");
    std::fs::write(&file, "id\n1\n").unwrap();
    // One after the other: each one's write is the other's change.
    for start in [Running::on_watch, Running::run] {
        let mut running = start(quick(&file));
        // Several periodic checks go by.
        assert_eq!(
            running.request_within(Duration::from_millis(700)).await,
            None
        );
        append(&file, "2\n");
        running.request().await;
        assert_eq!(running.stop().await, Vec::<String>::new());
    }
}

#[tokio::test]
async fn cancelling_should_end_the_trigger_promptly_while_the_folder_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = Running::run(quick(&dir.path().join("missing").join("hr.csv")));
    running.error().await;
    running.stop().await;
}
