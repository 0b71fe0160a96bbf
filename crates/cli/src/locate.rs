//! Where the store and the running service are, for the commands that only
//! talk to them (`status`, the operators' controls, `history`): they keep
//! working while `autosync.toml` is half-edited and does not load. The
//! store's place is then read from the file's `[store]` table alone
//! (`autosync_config::locate_store`), the store must already exist, and a
//! warning names the first error. The commands that need the whole
//! configuration (`run`, `run-profile`, `check`, `discover`, and `queue`,
//! `approve`, `reject` when no service answers) still fail with the
//! configuration's errors.
//!
//! One rule for the store: a command that only reads it (`status`,
//! `history`, `cs`, `mv`, `discover`) never creates it, nor its folder
//! ([`read_store`]); when it does not exist, the command says so on stderr
//! (a wrong `[store] path` shows there, not as an empty store made where
//! none should be) and answers as a store where nothing ran would: the
//! MAs of the configuration, never run; no runs; no objects. The commands
//! that run or change something (`run`, `run-profile`, and `approve`,
//! `reject`, `queue`, `start`, `stop`, `maintenance`, `cs delete` in the
//! store) create it ([`crate::commands::open_store`]).

use crate::commands::registry;
use crate::exit::Failure;
use autosync_config::{ConfigError, Loaded};
use autosync_connector::Registry;
use autosync_model::SystemDef;
use autosync_store::{Store, StoreRead, StoreResult, StoreTxn, sqlite::SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The store of a configuration, and the configuration when it loads.
pub struct Located {
    /// The store's file.
    pub store_path: PathBuf,
    /// The configuration file.
    config_path: PathBuf,
    /// The configuration, or why it does not load.
    config: Result<(Loaded, Arc<Registry>), ConfigError>,
    /// The store, once opened to read.
    store: OnceLock<Arc<dyn Store>>,
}

impl Located {
    /// Loads the configuration; when it does not load, finds its store
    /// anyway if the file says for sure where it is and it exists. Prints
    /// nothing: [`Located::warn`] says that the configuration is broken.
    pub fn find(config: &std::path::Path) -> Result<Located, Failure> {
        let registry = registry();
        // Commands that find a store never connect: a connector setting
        // left to the service's environment is a warning here.
        match autosync_config::load_to_read(config, &registry) {
            Ok(loaded) => Ok(Located {
                store_path: store_path_of(&loaded.system),
                config_path: config.to_path_buf(),
                config: Ok((loaded, Arc::new(registry))),
                store: OnceLock::new(),
            }),
            Err(error) => {
                let store = autosync_config::locate_store(config).filter(|s| s.path.is_file());
                match store {
                    Some(store) => Ok(Located {
                        store_path: store.path,
                        config_path: config.to_path_buf(),
                        config: Err(error),
                        store: OnceLock::new(),
                    }),
                    None => Err(Failure::Config(error)),
                }
            }
        }
    }

    /// The configuration, when it loads.
    pub fn loaded(&self) -> Option<(&Loaded, &Registry)> {
        self.config
            .as_ref()
            .ok()
            .map(|(loaded, registry)| (loaded, registry.as_ref()))
    }

    /// The configuration, for what needs it whole: its errors otherwise.
    pub fn into_loaded(self) -> Result<(Loaded, Arc<Registry>), Failure> {
        self.config.map_err(Failure::Config)
    }

    /// On stderr, when the configuration does not load: its first error
    /// (file, line, column) and that the command goes on with the store.
    pub fn warn(&self) {
        let Err(error) = &self.config else {
            return;
        };
        let first = error
            .errors()
            .next()
            .map(|d| d.to_string().lines().next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| error.summary());
        let more = error.errors().count().saturating_sub(1);
        let more = match more {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        errln!(
            "warning: the configuration does not load: {first}{more}; going on with the store it names, {} (`autosync check` shows every error)",
            self.store_path.display()
        );
    }

    /// The store, to read it: opened once, never created ([`read_store`]:
    /// when it does not exist, a note and an empty stand-in).
    pub fn open_store(&self) -> Result<Arc<dyn Store>, Failure> {
        if let Some(store) = self.store.get() {
            return Ok(Arc::clone(store));
        }
        let store = read_store(&self.store_path, &self.config_path)?;
        Ok(Arc::clone(self.store.get_or_init(|| store)))
    }

    /// Where the running service's `api.json` is.
    pub fn api_path(&self) -> PathBuf {
        autosync_api::ApiFile::path_for(&self.store_path)
    }

    /// The running service's `api.json`, unless it names another store's
    /// service (copied with a running service's folder).
    pub fn api_file(&self) -> Option<autosync_api::ApiFile> {
        autosync_api::ApiFile::for_store(&self.store_path)
    }
}

/// The store file a configuration names.
pub fn store_path_of(system: &SystemDef) -> PathBuf {
    system.base_dir.join(&system.store.path)
}

/// The store at `path` (named by the configuration `config`), for a
/// command that only reads it: never created, nor its folder. When it does
/// not exist, a note on stderr says so, and the answer comes from an empty
/// stand-in ([`Absent`]): what a store where nothing ran answers.
pub fn read_store(path: &Path, config: &Path) -> Result<Arc<dyn Store>, Failure> {
    if let Some(store) = SqliteStore::open_existing(path)? {
        return Ok(Arc::new(store));
    }
    errln!("{}", no_store_note(path, config));
    Ok(Arc::new(Absent::new()?))
}

/// What a command that only reads says when the store does not exist.
pub fn no_store_note(path: &Path, config: &Path) -> String {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    format!(
        "note: there is no store at {} yet: nothing has run with this configuration (`autosync run` or `autosync run-profile` creates it); if something has run, check `[store] path` in {} (a relative path is read from the configuration's folder)",
        absolute(path).display(),
        absolute(config).display()
    )
}

/// An empty store in a private temporary folder (removed when dropped):
/// what a command that only reads answers from when the configuration's
/// store does not exist, so that it answers exactly as a store where
/// nothing ran and creates nothing where the store should be.
struct Absent {
    /// Declared first: closed before its folder is removed.
    store: SqliteStore,
    _folder: TempFolder,
}

impl Absent {
    fn new() -> Result<Absent, Failure> {
        let folder = TempFolder::new()?;
        let store = SqliteStore::open(&folder.0.join("empty.db"))?;
        Ok(Absent {
            store,
            _folder: folder,
        })
    }
}

impl Store for Absent {
    fn read(&self) -> StoreResult<Box<dyn StoreRead + '_>> {
        self.store.read()
    }
    fn begin(&self) -> StoreResult<Box<dyn StoreTxn + '_>> {
        self.store.begin()
    }
    fn write_bulk(
        &self,
        work: &mut dyn FnMut(&mut dyn StoreTxn) -> StoreResult<()>,
    ) -> StoreResult<()> {
        self.store.write_bulk(work)
    }
    fn set_mv_index(&self, indexed: &[autosync_store::MvIndexDef]) -> StoreResult<()> {
        self.store.set_mv_index(indexed)
    }
    fn set_dn_index(&self, mas: &[&str]) -> StoreResult<()> {
        self.store.set_dn_index(mas)
    }
    fn set_value_rows(&self, rows: &autosync_store::ValueRows) -> StoreResult<()> {
        self.store.set_value_rows(rows)
    }
    fn declare_names(&self, names: &[&str]) -> StoreResult<()> {
        self.store.declare_names(names)
    }
    fn compare_and_set_meta(
        &self,
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
    ) -> StoreResult<bool> {
        self.store.compare_and_set_meta(key, expected, new)
    }
    fn store_file(&self) -> Option<autosync_store::lease::StoreFile> {
        self.store.store_file()
    }
    fn unfinished_runs(&self) -> StoreResult<Vec<autosync_model::RunRecord>> {
        self.store.unfinished_runs()
    }
    fn trim_runs(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        self.store.trim_runs(before)
    }
}

/// A folder of this process's own (mode 0700) under the system's
/// temporary folder, removed with what it holds when dropped.
struct TempFolder(PathBuf);

impl TempFolder {
    fn new() -> Result<TempFolder, Failure> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut last = None;
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!(
                "autosync-no-store-{}-{nanos:08x}-{n}",
                std::process::id()
            ));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            match builder.create(&path) {
                Ok(()) => return Ok(TempFolder(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        let why = last.map(|e| e.to_string()).unwrap_or_default();
        Err(Failure::Other(anyhow::anyhow!(
            "cannot create a temporary folder in {} (for the empty answer of a store that does not exist): {why}",
            base.display()
        )))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!(
                "cannot remove the temporary folder {}: {e}",
                self.0.display()
            );
        }
    }
}
