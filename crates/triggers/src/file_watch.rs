//! The file-watch trigger (file connectors): asks for an import when the
//! watched file changes. It watches the file's **folder**, so an atomic
//! replace (write a temporary file, rename it over) is seen, and keeps only
//! the events that name the file. Events are coalesced
//! ([`crate::coalescer`]): debounce window (default 1 s) plus max delay
//! (default 5 s), never dropped. Reads of the file (our own imports open it)
//! are not changes. If the folder cannot be watched, the error is reported
//! and the watch is retried every 30 s.
//!
//! Its default file is the MA connector's (`BuildContext::default_watch_path`,
//! from the connector's file-watch offer), and on that file
//! `ignore_attributes` reads records as the connector does
//! ([`FileWatchConfig::content`], see [`crate::content_filter`]).

use crate::change_filter::ChangeFilter;
use crate::clock::Clock;
use crate::coalescer::Coalescer;
use crate::config::{Ask, Common, check_positive, check_profile, default_profile, key_error};
use crate::duration::HumanDuration;
use crate::provided::Provided;
use crate::sink::RequestSink;
use autosync_connector::FileContent;
use notify::event::{MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
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
                &path.display().to_string(),
                common,
            ),
            folder: folder.to_path_buf(),
            file_name: file_name.to_os_string(),
            debounce: self.debounce.0,
            max_delay: self.max_delay.0,
            ignore: ChangeFilter::new(self.ignore_attributes.iter().cloned()),
            content: self.content.get().cloned(),
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
}

const RETRY: Duration = Duration::from_secs(30);

impl FileWatchTrigger {
    /// Starts watching the folder. Changes made after this returns are seen.
    pub fn watch(&self) -> Result<ActiveWatch, notify::Error> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })?;
        watcher.watch(&self.folder, RecursiveMode::NonRecursive)?;
        Ok(ActiveWatch {
            _watcher: watcher,
            events,
        })
    }

    /// Watches (retrying when the folder cannot be watched) and asks until
    /// cancelled or the sink closes.
    pub async fn run(
        self,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn RequestSink>,
        cancel: CancellationToken,
    ) {
        loop {
            match self.watch() {
                Ok(active) => {
                    self.run_with(active.events, clock.as_ref(), sink.as_ref(), &cancel)
                        .await;
                    return;
                }
                Err(e) => {
                    sink.error(crate::TriggerError {
                        ma: self.ask.ma.clone(),
                        trigger: self.ask.trigger.clone(),
                        message: format!(
                            "cannot watch folder `{}`: {e}; retrying in 30s",
                            self.folder.display()
                        ),
                        stopped: false,
                        at: clock.now(),
                    });
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// The coalescing loop over a watch set up by [`FileWatchTrigger::watch`]
    /// (kept alive until the loop ends).
    pub async fn run_on(
        &self,
        active: ActiveWatch,
        clock: &dyn Clock,
        sink: &dyn RequestSink,
        cancel: &CancellationToken,
    ) {
        let ActiveWatch {
            _watcher: watcher,
            events,
        } = active;
        self.run_with(events, clock, sink, cancel).await;
        drop(watcher);
    }

    /// The coalescing loop over a stream of filesystem events.
    pub async fn run_with(
        &self,
        mut events: mpsc::UnboundedReceiver<notify::Result<Event>>,
        clock: &dyn Clock,
        sink: &dyn RequestSink,
        cancel: &CancellationToken,
    ) {
        let mut coalescer = Coalescer::new(self.debounce, self.max_delay);
        let mut open = true;
        let filtering = !self.ignore.ignore_attributes.is_empty();
        let mut last = if filtering {
            self.relevant_fingerprint().await
        } else {
            None
        };
        loop {
            let deadline = coalescer.next_deadline();
            tokio::select! {
                () = cancel.cancelled() => return,
                event = events.recv(), if open => match event {
                    Some(Ok(event)) => {
                        if is_change_of(&event, &self.file_name) {
                            coalescer.on_event(tokio::time::Instant::now());
                        }
                    }
                    Some(Err(e)) => sink.error(crate::TriggerError {
                        ma: self.ask.ma.clone(),
                        trigger: self.ask.trigger.clone(),
                        message: format!("watch error: {e}"),
                        stopped: false,
                        at: clock.now(),
                    }),
                    None => open = false,
                },
                () = sleep_until(deadline) => {
                    if let Some(fire) = coalescer.poll(tokio::time::Instant::now()) {
                        if filtering {
                            let now = self.relevant_fingerprint().await;
                            if now.is_some() && now == last {
                                tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, "file changed in ignored attributes only: no import");
                                continue;
                            }
                            last = now;
                        }
                        tracing::info!(ma = %self.ask.ma, trigger = %self.ask.trigger, events = fire.events, "file changed");
                        if sink.request(self.ask.request()).is_err() {
                            return;
                        }
                    }
                }
            }
            if !open && !coalescer.is_pending() {
                // The watcher is gone and nothing is left to fire.
                cancel.cancelled().await;
                return;
            }
        }
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
}
