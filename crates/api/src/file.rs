//! `api.json`: how the CLI finds the running service of a store (its
//! URL and token, and which store it runs on), written beside the store
//! readable by its owner only.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file's name, in the store's folder.
pub const API_FILE: &str = "api.json";

/// How the CLI finds the running service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFile {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub token: String,
    /// The store the service runs on (its path, symbolic links resolved).
    /// A copy of the store's folder (a snapshot restored elsewhere, `cp
    /// -a`) carries the file: read beside another store, it names another
    /// store's service, and [`ApiFile::for_store`] leaves it aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

impl ApiFile {
    /// Where the file of a store at `store_path` is.
    pub fn path_for(store_path: &Path) -> PathBuf {
        store_path
            .parent()
            .map(|p| p.join(API_FILE))
            .unwrap_or_else(|| PathBuf::from(API_FILE))
    }

    /// The file of the service running on the store at `store_path`: the
    /// one beside it, unless it names another store (a copy of a running
    /// service's folder: its commands would reach that service).
    pub fn for_store(store_path: &Path) -> Option<ApiFile> {
        let file = Self::read(&Self::path_for(store_path))?;
        if let Some(theirs) = &file.store {
            let mine = Self::store_name(store_path);
            if *theirs != mine {
                tracing::warn!(
                    file = %Self::path_for(store_path).display(),
                    names = %theirs,
                    store = %mine,
                    "left aside: this api.json names the service of another store (a copy of its folder)"
                );
                return None;
            }
        }
        Some(file)
    }

    /// How [`ApiFile::store`] names the store at `store_path`.
    pub fn store_name(store_path: &Path) -> String {
        std::fs::canonicalize(store_path)
            .or_else(|_| std::path::absolute(store_path))
            .unwrap_or_else(|_| store_path.to_path_buf())
            .display()
            .to_string()
    }

    /// Reads the file, if a service wrote one.
    pub fn read(path: &Path) -> Option<ApiFile> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the file readable by its owner only: a new file created
    /// 0600 beside it, then renamed over the old one. The token never goes
    /// into an older file (whose mode may be wider, and which another user
    /// may hold open).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        let mut name = std::ffi::OsString::from(".");
        name.push(path.file_name().unwrap_or_default());
        name.push(format!(".{}.tmp", std::process::id()));
        let temp = path.with_file_name(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options
            .open(&temp)
            .and_then(|mut file| {
                use std::io::Write;
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}
