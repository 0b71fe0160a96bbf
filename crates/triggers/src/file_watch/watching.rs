//! Keeping the watch: the folder watched (`notify`), its events filtered
//! and coalesced into requests, the folder's loss seen (its own events and
//! a periodic check of its identity) and the watch set up again at its
//! path, retried while it cannot be.

use super::{FileWatchTrigger, is_change_of};
use crate::clock::Clock;
use crate::coalescer::Coalescer;
use crate::duration::format_duration;
use crate::sink::{RequestSink, SinkClosed};
use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A watch that is set up: its watcher and the events it delivers.
pub struct ActiveWatch {
    _watcher: RecommendedWatcher,
    pub(super) events: mpsc::UnboundedReceiver<notify::Result<Event>>,
    /// The folder as the watcher names it in its events (made absolute).
    folder: PathBuf,
    /// The folder that was at the path when the watch was set up.
    id: Option<FolderId>,
}

/// Which folder is at a path: a folder removed or moved away and another
/// put in its place has another identity. The creation time tells a new
/// folder from an old one whose inode number it reuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FolderId {
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
}

impl FolderId {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        FolderId {
            dev,
            ino,
            born: meta.created().ok(),
        }
    }

    /// The folder at `path` now; `None` when there is none.
    fn at(path: &Path) -> Option<Self> {
        std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .map(|m| FolderId::of(&m))
    }
}

/// What an event says about the watched folder itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FolderEvent {
    /// Removed: the watch went with it.
    Removed,
    /// Moved: the watch follows it; another folder may now be at the path.
    Moved,
}

fn folder_event(event: &Event, folder: &Path) -> Option<FolderEvent> {
    if !event.paths.iter().any(|p| p == folder) {
        return None;
    }
    match event.kind {
        EventKind::Remove(_) => Some(FolderEvent::Removed),
        EventKind::Modify(ModifyKind::Name(_)) => Some(FolderEvent::Moved),
        _ => None,
    }
}

/// How often a folder that could not be watched is tried again, the
/// failure reported each time.
pub(super) const RETRY: Duration = Duration::from_secs(30);
/// How often the watched folder is checked to still be the one at the path
/// (a safety net for losses no event tells of, e.g. a parent folder
/// replaced), and a folder that could not be watched is looked for.
pub(super) const RECHECK: Duration = Duration::from_secs(5);

/// What woke the watch loop.
enum Wake {
    Cancelled,
    Event(Option<notify::Result<Event>>),
    Deadline,
    Recheck,
    Retry,
}

impl FileWatchTrigger {
    /// Starts watching the folder. Changes made after this returns are seen.
    pub fn watch(&self) -> Result<ActiveWatch, notify::Error> {
        // The folder is identified before it is watched: if it is replaced
        // in between, the watch is on the newer folder and the next check
        // sees a difference (one needless re-watch), never the reverse.
        let meta = std::fs::metadata(&self.folder);
        if let Ok(m) = &meta
            && !m.is_dir()
        {
            return Err(notify::Error::generic("not a folder").add_path(self.folder.clone()));
        }
        let id = meta.ok().map(|m| FolderId::of(&m));
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })?;
        watcher.watch(&self.folder, RecursiveMode::NonRecursive)?;
        Ok(ActiveWatch {
            _watcher: watcher,
            events,
            // As the watcher names it in its events.
            folder: std::path::absolute(&self.folder).unwrap_or_else(|_| self.folder.clone()),
            id,
        })
    }

    /// Watches (retrying when the folder cannot be watched) and asks until
    /// cancelled or the sink closes. A watch set up at once asks for
    /// nothing; one set up after a failure asks for an import.
    pub async fn run(
        self,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        let first = match self.watch() {
            Ok(active) => Some(active),
            Err(e) => {
                self.report(clock.as_ref(), sink.as_ref(), self.cannot_watch(&e));
                None
            }
        };
        self.supervise(first, clock.as_ref(), sink.as_ref(), &cancel)
            .await;
    }

    /// The coalescing loop over a watch set up by [`FileWatchTrigger::watch`],
    /// until cancelled or the sink closes. When the watched folder is
    /// removed, moved away or replaced, this is reported, the folder at the
    /// path is watched again as soon as there is one, and an import is
    /// asked for then (the file may have changed meanwhile).
    pub async fn run_on(
        &self,
        active: ActiveWatch,
        clock: &dyn Clock,
        sink: &dyn RequestSink,
        cancel: &CancellationToken,
    ) {
        self.supervise(Some(active), clock, sink, cancel).await;
    }

    /// The watch loop: coalesces the changes of the file, notices a lost
    /// watch and watches again (every watch set up here asks for an import).
    async fn supervise(
        &self,
        mut watch: Option<ActiveWatch>,
        clock: &dyn Clock,
        sink: &dyn RequestSink,
        cancel: &CancellationToken,
    ) {
        let mut requests = Requests::new(self).await;
        let start = tokio::time::Instant::now();
        let mut retry_at = start + self.retry;
        let mut recheck = tokio::time::interval_at(start + self.recheck, self.recheck);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let watching = watch.is_some();
            let wake = tokio::select! {
                () = cancel.cancelled() => Wake::Cancelled,
                event = async {
                    match watch.as_mut() {
                        Some(active) => active.events.recv().await,
                        None => std::future::pending().await,
                    }
                }, if watching => Wake::Event(event),
                () = sleep_until(requests.deadline()) => Wake::Deadline,
                _ = recheck.tick() => Wake::Recheck,
                () = tokio::time::sleep_until(retry_at), if !watching => Wake::Retry,
            };
            let lost = match wake {
                Wake::Cancelled => return,
                Wake::Event(Some(Ok(event))) => {
                    if is_change_of(&event, &self.file_name) {
                        requests.on_change();
                    }
                    match (&watch, folder_event(&event, self.watched_path(&watch))) {
                        (_, Some(FolderEvent::Removed)) => Some("was removed"),
                        (Some(active), Some(FolderEvent::Moved)) if self.replaced(active) => {
                            Some("was moved away or replaced")
                        }
                        _ => None,
                    }
                }
                Wake::Event(Some(Err(e))) => {
                    self.report(clock, sink, format!("watch error: {e}"));
                    None
                }
                Wake::Event(None) => Some("is no longer watched (the watcher stopped)"),
                Wake::Deadline => {
                    if requests.fire(sink).await.is_err() {
                        return;
                    }
                    None
                }
                Wake::Recheck => match &watch {
                    Some(active) if self.replaced(active) => {
                        Some("was removed, moved away or replaced")
                    }
                    Some(_) => None,
                    None => {
                        // Watch it as soon as it is back; a failure is
                        // reported by the next retry.
                        if FolderId::at(&self.folder).is_some() {
                            match self.watch() {
                                Ok(active) => {
                                    self.rewatched(&mut requests);
                                    watch = Some(active);
                                }
                                Err(e) => {
                                    tracing::debug!(ma = %self.ask.ma, trigger = %self.ask.trigger, "{}", self.cannot_watch(&e));
                                }
                            }
                        }
                        None
                    }
                },
                Wake::Retry => {
                    match self.watch() {
                        Ok(active) => {
                            self.rewatched(&mut requests);
                            watch = Some(active);
                        }
                        Err(e) => {
                            self.report(clock, sink, self.cannot_watch(&e));
                            retry_at = tokio::time::Instant::now() + self.retry;
                        }
                    }
                    None
                }
            };
            if let Some(what) = lost {
                // Drop the old watch before setting up the new one.
                watch = None;
                let folder = self.folder.display();
                match self.watch() {
                    Ok(active) => {
                        self.report(
                            clock,
                            sink,
                            format!(
                                "the watched folder `{folder}` {what}: watching the folder now at that path; an import is asked for, the file may have changed meanwhile"
                            ),
                        );
                        requests.on_change();
                        watch = Some(active);
                    }
                    Err(e) => {
                        self.report(
                            clock,
                            sink,
                            format!(
                                "the watched folder `{folder}` {what}, and no folder is at that path now ({e}): it is watched again as soon as one is (looked for every {}), and an import is asked for then",
                                format_duration(self.recheck)
                            ),
                        );
                        retry_at = tokio::time::Instant::now() + self.retry;
                    }
                }
            }
        }
    }

    /// The folder as the current watch names it (the configured path while
    /// there is none).
    fn watched_path<'a>(&'a self, watch: &'a Option<ActiveWatch>) -> &'a Path {
        watch
            .as_ref()
            .map_or(self.folder.as_path(), |a| a.folder.as_path())
    }

    /// Whether the folder at the path is no longer the watched one.
    fn replaced(&self, active: &ActiveWatch) -> bool {
        match FolderId::at(&self.folder) {
            Some(now) => active.id != Some(now),
            None => true,
        }
    }

    /// A watch set up after a failure or a loss: asks for an import, since
    /// the file may have changed while it was not watched.
    fn rewatched(&self, requests: &mut Requests<'_>) {
        tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, folder = %self.folder.display(), "watching the folder again; an import is asked for");
        requests.on_change();
    }

    fn cannot_watch(&self, e: &notify::Error) -> String {
        format!(
            "cannot watch folder `{}`: {e}; retrying in {}",
            self.folder.display(),
            format_duration(self.retry)
        )
    }

    fn report(&self, clock: &dyn Clock, sink: &dyn RequestSink, message: String) {
        sink.error(crate::TriggerError {
            ma: self.ask.ma.clone(),
            trigger: self.ask.trigger.clone(),
            message,
            stopped: false,
            at: clock.now(),
        });
    }

    /// The coalescing loop over a stream of filesystem events (no watcher:
    /// nothing is watched again).
    pub async fn run_with(
        &self,
        mut events: mpsc::UnboundedReceiver<notify::Result<Event>>,
        clock: &dyn Clock,
        sink: &dyn RequestSink,
        cancel: &CancellationToken,
    ) {
        let mut requests = Requests::new(self).await;
        let mut open = true;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                event = events.recv(), if open => match event {
                    Some(Ok(event)) => {
                        if is_change_of(&event, &self.file_name) {
                            requests.on_change();
                        }
                    }
                    Some(Err(e)) => self.report(clock, sink, format!("watch error: {e}")),
                    None => open = false,
                },
                () = sleep_until(requests.deadline()) => {
                    if requests.fire(sink).await.is_err() {
                        return;
                    }
                }
            }
            if !open && !requests.coalescer.is_pending() {
                // The watcher is gone and nothing is left to fire.
                cancel.cancelled().await;
                return;
            }
        }
    }
}

/// Changes coalesced into requests, with the `ignore_attributes` check.
struct Requests<'a> {
    trigger: &'a FileWatchTrigger,
    coalescer: Coalescer,
    filtering: bool,
    /// The file's fingerprint at the last request (with `ignore_attributes`).
    last: Option<u64>,
}

impl<'a> Requests<'a> {
    async fn new(trigger: &'a FileWatchTrigger) -> Self {
        let filtering = !trigger.ignore.ignore_attributes.is_empty();
        let last = if filtering {
            trigger.relevant_fingerprint().await
        } else {
            None
        };
        Requests {
            trigger,
            coalescer: Coalescer::new(trigger.debounce, trigger.max_delay),
            filtering,
            last,
        }
    }

    fn on_change(&mut self) {
        self.coalescer.on_event(tokio::time::Instant::now());
    }

    fn deadline(&self) -> Option<tokio::time::Instant> {
        self.coalescer.next_deadline()
    }

    /// At the deadline: asks when a burst is due (and, with
    /// `ignore_attributes`, changed what counts). `Err`: nobody receives.
    async fn fire(&mut self, sink: &dyn RequestSink) -> Result<(), SinkClosed> {
        let Some(fire) = self.coalescer.poll(tokio::time::Instant::now()) else {
            return Ok(());
        };
        let ask = &self.trigger.ask;
        if self.filtering {
            let now = self.trigger.relevant_fingerprint().await;
            if now.is_some() && now == self.last {
                tracing::info!(ma = %ask.ma, trigger = %ask.trigger, "file changed in ignored attributes only: no import");
                return Ok(());
            }
            self.last = now;
        }
        tracing::info!(ma = %ask.ma, trigger = %ask.trigger, events = fire.events, "file changed");
        sink.request(ask.request())
    }
}

impl FileWatchTrigger {
    /// The fingerprint of the file without the ignored attributes, read on
    /// a blocking thread; `None` when it cannot be read (the change then
    /// counts: a change is never dropped).
    async fn relevant_fingerprint(&self) -> Option<u64> {
        let path = self.folder.join(&self.file_name);
        let filter = self.ignore.clone();
        let content = self.content.clone();
        let result = tokio::task::spawn_blocking(move || {
            crate::content_filter::fingerprint(&path, &filter, content.as_deref())
        })
        .await;
        match result {
            Ok(Ok(fp)) => Some(fp),
            Ok(Err(e)) => {
                tracing::debug!(ma = %self.ask.ma, "cannot fingerprint the watched file ({e}); the change counts");
                None
            }
            Err(_) => None,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
