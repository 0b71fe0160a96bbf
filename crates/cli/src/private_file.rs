//! Files the command writes that may hold secrets or identities (the
//! `discover --write` proposal),
//! created readable and writable by their owner only (mode 0600) from the
//! start: never a moment with the process umask's wider mode.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The mode of every file this module creates.
#[cfg(unix)]
pub const MODE: u32 = 0o600;

/// Options that create a file with [`MODE`] (when they create it).
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(MODE);
    }
    options
}

/// Writes `bytes` to a new file at `path`; fails with `AlreadyExists` when
/// there is one.
pub fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` to `path`, replacing the file there if any: a new file
/// (mode 0600) beside it, renamed over it once complete, so the old file's
/// mode is not inherited and a reader never sees half of it.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_beside(path);
    let written = create_new(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `.<name>.<pid>.tmp` in `path`'s folder.
fn temp_beside(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_replaced_file_should_not_keep_the_old_files_wider_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("proposal.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );
    }
}
