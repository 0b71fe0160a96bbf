//! The file-watch trigger (file connectors): asks for an import when the
//! watched file changes. It watches the file's **folder**, so an atomic
//! replace (write a temporary file, rename it over) is seen, and keeps only
//! the events that name the file. Events are coalesced
//! ([`crate::coalescer`]): debounce window (default 1 s) plus max delay
//! (default 5 s), never dropped. Reads of the file (our own imports open it)
//! are not changes. If the folder cannot be watched, the error is reported
//! and the watch is retried every 30 s (and as soon as the folder exists:
//! looked for every 5 s). When the watched folder is removed, moved away or
//! replaced (its own events, and a check every 5 s that the folder at the
//! path is still the watched one), this is reported once and the folder at
//! the path is watched again. Every watch set up after a failure or a loss
//! asks for an import, since the file may have changed meanwhile; the first
//! one at start does not.
//!
//! Its default file is the MA connector's (`BuildContext::default_watch_path`,
//! from the connector's file-watch offer), and on that file
//! `ignore_attributes` reads records as the connector does
//! ([`FileWatchConfig::content`], see [`crate::content_filter`]).

use crate::change_filter::ChangeFilter;
use crate::clock::Clock;
use crate::coalescer::Coalescer;
use crate::config::{Ask, Common, check_positive, check_profile, default_profile, key_error};
use crate::duration::{HumanDuration, format_duration};
use crate::provided::Provided;
use crate::sink::{RequestSink, SinkClosed};
use autosync_connector::FileContent;
use notify::event::{MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// `{ type = "file-watch", path = "data/hr.csv", debounce = "1s", max_delay = "5s" }`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWatchConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_profile")]
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    /// The file to watch, relative to the configuration file's folder.
    /// Defaults to the MA connector's file (given by the controller).
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default = "default_debounce")]
    pub debounce: HumanDuration,
    #[serde(default = "default_max_delay")]
    pub max_delay: HumanDuration,
    /// Columns (CSV) or keys (JSON lines) whose changes ask for no import,
    /// e.g. a last-logon timestamp that changes all day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_attributes: Vec<String>,
    /// How the MA's connector reads the watched file (for
    /// `ignore_attributes`): provided when the watch is on the connector's
    /// own file; other files are compared whole. Not a key of the file.
    #[serde(skip)]
    pub content: Provided<dyn FileContent>,
}

fn default_debounce() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_max_delay() -> HumanDuration {
    HumanDuration::from_secs(5)
}

/// A validated file-watch trigger.
#[derive(Clone, Debug)]
pub struct FileWatchTrigger {
    pub ask: Ask,
    /// The watched folder and the file's name in it.
    pub folder: PathBuf,
    pub file_name: OsString,
    pub debounce: Duration,
    pub max_delay: Duration,
    /// Attributes whose changes ask for no import (empty: every change asks).
    pub ignore: ChangeFilter,
    /// How the connector reads the file (`None`: compared whole).
    pub content: Option<Arc<dyn FileContent>>,
    /// How often a folder that cannot be watched is tried again, the
    /// failure reported each time (30 s; not a key of the file).
    pub retry: Duration,
    /// How often the watched folder is checked to still be the one at its
    /// path, and a missing one looked for (5 s; not a key of the file).
    pub recheck: Duration,
}

impl FileWatchConfig {
    /// `base_dir` resolves a relative path; `default_path` is the connector's
    /// file when `path` is not given.
    pub fn validate(
        &self,
        ma: &str,
        index: usize,
        base_dir: &Path,
        default_path: Option<&Path>,
    ) -> Result<FileWatchTrigger, crate::TriggerConfigError> {
        let kind = "file-watch";
        check_profile(ma, index, kind, &self.profile)?;
        let Some(path) = self.path.as_deref().or(default_path) else {
            return Err(key_error(
                ma,
                index,
                kind,
                "path",
                "is required (this MA's connector has no file to default to)",
            ));
        };
        let path = base_dir.join(path);
        // A file that is a symbolic link is watched as the link: its
        // folder sees the link replaced (`ln -sfn`, the usual deployment),
        // not writes to the file it points to in another folder (the docs
        // say so).
        let shown = path.clone();
        let (Some(folder), Some(file_name)) = (path.parent(), path.file_name()) else {
            return Err(key_error(
                ma,
                index,
                kind,
                "path",
                format!("`{}` does not name a file", path.display()),
            ));
        };
        check_positive(ma, index, kind, "debounce", self.debounce.0)?;
        if self.max_delay.0 < self.debounce.0 {
            return Err(key_error(
                ma,
                index,
                kind,
                "max_delay",
                format!(
                    "must be at least `debounce` ({} < {})",
                    self.max_delay, self.debounce
                ),
            ));
        }
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        let common = Common {
            profile: &self.profile,
            exclusive: self.exclusive,
            run_immediate: self.run_immediate,
        };
        Ok(FileWatchTrigger {
            ask: Ask::new(
                ma,
                kind,
                self.name.as_deref(),
                &shown.display().to_string(),
                common,
            ),
            folder: folder.to_path_buf(),
            file_name: file_name.to_os_string(),
            debounce: self.debounce.0,
            max_delay: self.max_delay.0,
            ignore: ChangeFilter::new(self.ignore_attributes.iter().cloned()),
            content: self.content.get().cloned(),
            retry: RETRY,
            recheck: RECHECK,
        })
    }
}

/// Whether a filesystem event is a change of the watched file: it names the
/// file, and it is a creation, a modification of content or metadata (not
/// of the access time), a removal or a rename. Reads, opens and closes are
/// not changes, not even the close of a file opened for writing: a process
/// that opens a file read-write and writes nothing (SQLite opens its
/// database so, our own import of it included) changes nothing, and every
/// write that does change it is seen as a modification before the close.
/// An event saying events were lost is relevant.
pub fn is_change_of(event: &Event, file_name: &OsString) -> bool {
    if event.need_rescan() {
        return true;
    }
    let kind_is_change = match event.kind {
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Other => false,
    };
    kind_is_change
        && event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(file_name.as_os_str()))
}

/// A watch that is set up: its watcher and the events it delivers.
pub struct ActiveWatch {
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<notify::Result<Event>>,
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
const RETRY: Duration = Duration::from_secs(30);
/// How often the watched folder is checked to still be the one at the path
/// (a safety net for losses no event tells of, e.g. a parent folder
/// replaced), and a folder that could not be watched is looked for.
const RECHECK: Duration = Duration::from_secs(5);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TriggerRequest;
    use crate::clock::SystemClock;
    use crate::sink::TriggerEvent;
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    fn name() -> OsString {
        OsString::from("hr.csv")
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
        let config = FileWatchConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            path: Some(path.clone()),
            debounce: "1s".parse().unwrap(),
            max_delay: "5s".parse().unwrap(),
            ignore_attributes: Vec::new(),
            content: Provided::default(),
        };
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
        let config = FileWatchConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            path: Some("hr.csv".into()),
            debounce: "2s".parse().unwrap(),
            max_delay: "1s".parse().unwrap(),
            ignore_attributes: Vec::new(),
            content: Provided::default(),
        };
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
        let config = FileWatchConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            path: Some("data/hr.csv".into()),
            debounce: "1s".parse().unwrap(),
            max_delay: "5s".parse().unwrap(),
            ignore_attributes: Vec::new(),
            content: Provided::default(),
        };
        let trigger = config.validate("hr", 0, Path::new("/cfg"), None).unwrap();
        assert_eq!(trigger.folder, PathBuf::from("/cfg/data"));
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::unbounded_channel::<TriggerRequest>();
        let cancel = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let runner = {
            let cancel = cancel.clone();
            tokio::spawn(
                async move { trigger.run_with(event_rx, &SystemClock, &tx, &cancel).await },
            )
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
        let config = FileWatchConfig {
            name: None,
            profile: "delta-import".into(),
            exclusive: false,
            run_immediate: false,
            path: Some(path.to_path_buf()),
            debounce: "50ms".parse().unwrap(),
            max_delay: "200ms".parse().unwrap(),
            ignore_attributes: Vec::new(),
            content: Provided::default(),
        };
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
            let task =
                tokio::spawn(trigger.run(Arc::new(SystemClock), Arc::new(tx), cancel.clone()));
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
}
