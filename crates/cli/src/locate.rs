//! Where the store and the running service are, for the commands that only
//! talk to them (`status`, the operators' controls, `history`): they keep
//! working while `autosync.toml` is half-edited and does not load. The
//! store's place is then read from the file's `[store]` table alone
//! (`autosync_config::locate_store`), the store must already exist (a
//! guess never creates one), and a warning names the first error. The
//! commands that need the whole configuration (`run`, `run-profile`,
//! `check`, `discover`, and `queue`, `approve`, `reject` when no service
//! answers) still fail with the configuration's errors.

use crate::commands::registry;
use crate::exit::Failure;
use autosync_config::{ConfigError, Loaded};
use autosync_connector::Registry;
use autosync_store::{Store, sqlite::SqliteStore};
use std::path::PathBuf;
use std::sync::Arc;

/// The store of a configuration, and the configuration when it loads.
pub struct Located {
    /// The store's file.
    pub store_path: PathBuf,
    /// The configuration, or why it does not load.
    config: Result<(Loaded, Arc<Registry>), ConfigError>,
}

impl Located {
    /// Loads the configuration; when it does not load, finds its store
    /// anyway if the file says for sure where it is and it exists. Prints
    /// nothing: [`Located::warn`] says that the configuration is broken.
    pub fn find(config: &std::path::Path) -> Result<Located, Failure> {
        let registry = registry();
        match autosync_config::load(config, &registry) {
            Ok(loaded) => Ok(Located {
                store_path: loaded.system.base_dir.join(&loaded.system.store.path),
                config: Ok((loaded, Arc::new(registry))),
            }),
            Err(error) => {
                let store = autosync_config::locate_store(config).filter(|s| s.path.is_file());
                match store {
                    Some(store) => Ok(Located {
                        store_path: store.path,
                        config: Err(error),
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
        eprintln!(
            "warning: the configuration does not load: {first}{more}; going on with the store it names, {} (`autosync check` shows every error)",
            self.store_path.display()
        );
    }

    /// Opens the store (it exists: [`Located::find`] checked).
    pub fn open_store(&self) -> Result<Arc<dyn Store>, Failure> {
        Ok(Arc::new(SqliteStore::open(&self.store_path)?))
    }

    /// Where the running service's `api.json` is.
    pub fn api_path(&self) -> PathBuf {
        autosync_api::ApiFile::path_for(&self.store_path)
    }
}
