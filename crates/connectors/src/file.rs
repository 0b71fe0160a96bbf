//! What the file connectors (CSV, JSON Lines) share: opening a source with
//! whole-step errors that map to run statuses, the file fingerprint used as
//! watermark (so an untouched file is not diffed again), and the atomic
//! write that replaces a target file without ever leaving it half-written.

use autosync_connector::{ConnectorError, ConnectorErrorKind};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// The name used in error locations, e.g. `hr.csv`.
pub fn label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Map an I/O error on a file to a whole-step connector error.
pub fn io_error(path: &Path, what: &str, e: &io::Error) -> ConnectorError {
    let kind = match e.kind() {
        io::ErrorKind::NotFound
        | io::ErrorKind::PermissionDenied
        | io::ErrorKind::ReadOnlyFilesystem => ConnectorErrorKind::ServerDown,
        io::ErrorKind::InvalidData => ConnectorErrorKind::Data,
        _ => ConnectorErrorKind::Connectivity,
    };
    ConnectorError::new(kind, format!("{what} {}: {e}", path.display()))
}

/// A file's fingerprint: size, modification time (informational) and an
/// xxh3 hash of its bytes. Two files with the same size and hash are taken
/// as byte-identical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: u128,
    pub hash: u64,
}

impl Fingerprint {
    /// The watermark text: `xxh3:<hash>:<size>:<mtime ns>`.
    pub fn to_watermark(self) -> String {
        format!("xxh3:{:016x}:{}:{}", self.hash, self.size, self.mtime_ns)
    }

    /// Parse a watermark; `None` for anything else (e.g. from another version).
    pub fn parse(text: &str) -> Option<Fingerprint> {
        let mut parts = text.strip_prefix("xxh3:")?.split(':');
        let hash = u64::from_str_radix(parts.next()?, 16).ok()?;
        let size = parts.next()?.parse().ok()?;
        let mtime_ns = parts.next()?.parse().ok()?;
        Some(Fingerprint {
            size,
            mtime_ns,
            hash,
        })
    }

    /// Whether the file at `path` is byte-identical to this fingerprint
    /// (hashes it only when the size matches).
    pub fn matches(&self, path: &Path) -> Result<bool, ConnectorError> {
        let file = File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
        let meta = file
            .metadata()
            .map_err(|e| io_error(path, "cannot read", &e))?;
        if meta.len() != self.size {
            return Ok(false);
        }
        let mut reader = HashingReader::new(file);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(path, "cannot read", &e)),
            }
        }
        Ok(reader.bytes == self.size && reader.hash() == self.hash)
    }
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
pub fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A reader that hashes every byte read through it, so an import computes
/// the file's fingerprint in the same pass.
pub struct HashingReader<R> {
    inner: R,
    hasher: Box<Xxh3>,
    pub bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Box::new(Xxh3::new()),
            bytes: 0,
        }
    }

    pub fn hash(&self) -> u64 {
        self.hasher.digest()
    }
}

impl HashingReader<File> {
    /// A source file read to its end (`size` bytes and modification time
    /// `mtime_ns` when opened): check that it did not change while it was
    /// read ([`check_read_whole`]) and return its watermark.
    pub fn whole_file_watermark(
        &self,
        label: &str,
        size: u64,
        mtime_ns: u128,
    ) -> Result<String, ConnectorError> {
        check_read_whole(label, &self.inner, size, mtime_ns, self.bytes)?;
        let fp = Fingerprint {
            size: self.bytes,
            mtime_ns,
            hash: self.hash(),
        };
        Ok(fp.to_watermark())
    }
}

/// Check that a source file read whole was not changed while it was read:
/// it had `size` bytes and modification time `mtime_ns` when opened, and
/// the open file (`file`: a file renamed over the path meanwhile is another
/// file, and the one read stays whole) still has them, all `read` of them.
/// Another program rewriting the file in place makes the import fail with
/// `Connectivity` (retried like a dropped connection) instead of handing
/// the engine a half-written file, whose missing rows would look like
/// deletes.
pub fn check_read_whole(
    label: &str,
    file: &File,
    size: u64,
    mtime: u128,
    read: u64,
) -> Result<(), ConnectorError> {
    let now = file.metadata().ok();
    let (now_size, now_mtime) = now
        .as_ref()
        .map_or((u64::MAX, 0), |m| (m.len(), mtime_ns(m)));
    if read == size && now_size == size && now_mtime == mtime {
        return Ok(());
    }
    Err(ConnectorError::new(
        ConnectorErrorKind::Connectivity,
        format!(
            "{label} changed while it was read ({size} bytes when opened, {read} read, {} now): \
             another program is writing it in place; nothing was staged for deletion (the adds \
             and updates read before it stay staged, as MIM keeps what a stopped import staged). \
             Run the import again once the file is written (a program that writes it aside and renames \
             it into place avoids this)",
            if now_size == u64::MAX {
                "unknown".to_owned()
            } else {
                now_size.to_string()
            }
        ),
    ))
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(read) = buf.get(..n) {
            self.hasher.update(read);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Open a source file for import, with its metadata.
pub fn open_source(path: &Path) -> Result<(File, std::fs::Metadata), ConnectorError> {
    let file = File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
    let meta = file
        .metadata()
        .map_err(|e| io_error(path, "cannot read", &e))?;
    if meta.is_dir() {
        return Err(ConnectorError::new(
            ConnectorErrorKind::Configuration,
            format!("{} is a folder, not a file", path.display()),
        ));
    }
    Ok((file, meta))
}

/// Check that the folder a target file goes into exists.
pub fn check_target_folder(path: &Path) -> Result<PathBuf, ConnectorError> {
    let dir = folder(path);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(ConnectorError::new(
            ConnectorErrorKind::ServerDown,
            format!("folder {} of {} does not exist", dir.display(), label(path)),
        ))
    }
}

fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Replace `target` atomically: write a temporary file in the same folder,
/// fsync it, rename it over the target, fsync the folder. Readers see the
/// old file or the new one, never a half-written one; on any error the
/// temporary file is removed and the target is untouched. A target that
/// is a symbolic link is written where it points (the link stays; what
/// reads the real file sees the export). A target that is read-only
/// ([`read_only`]) is refused (`ServerDown`, as SQLite's read-only
/// database) before anything is written: renaming over it would replace
/// a file no one is meant to write.
pub fn write_atomically(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> io::Result<()>,
) -> Result<(), ConnectorError> {
    let resolved = through_links(target);
    let shown = target;
    let target = resolved.as_path();
    let dir = check_target_folder(target)?;
    if let Some(why) = read_only(target) {
        return Err(ConnectorError::new(
            ConnectorErrorKind::ServerDown,
            format!(
                "{} is read-only ({why}): the export does not replace a file it may not write, \
                 and wrote nothing; it stops and is retried once the file is writable",
                shown.display()
            ),
        ));
    }
    let wrap = |what: &str, e: io::Error| io_error(shown, what, &e);
    let prefix = format!(".{}.", label(target));
    remove_leftovers(&dir, &prefix);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| wrap("cannot create a temporary file next to", e))?;
    {
        let mut w = BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        write(&mut w).map_err(|e| wrap("cannot write", e))?;
        w.flush().map_err(|e| wrap("cannot write", e))?;
    }
    match std::fs::metadata(target) {
        Ok(meta) => std::fs::set_permissions(tmp.path(), meta.permissions())
            .map_err(|e| wrap("cannot set permissions of", e))?,
        Err(_) => {
            set_default_permissions(tmp.path()).map_err(|e| wrap("cannot set permissions of", e))?
        }
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| wrap("cannot sync", e))?;
    tmp.persist(target)
        .map_err(|e| wrap("cannot replace", e.error))?;
    sync_folder(&dir).map_err(|e| wrap("cannot sync the folder of", e))
}

/// Why the existing file `path` is read-only, or `None` when it may be
/// written (or is no file: nothing to refuse). Read-only is: a mode that
/// gives no one write permission (`chmod a-w`; refused even for root,
/// who could write it), or a file this process may not open for writing
/// (another user's, a read-only file system: the check is the open, which
/// writes nothing; what watches the file sees an access, not a change).
/// An export would write the file aside and rename it over the read-only
/// one, which only the folder's permission governs.
pub fn read_only(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if let Some(why) = no_write_bit(&meta) {
        return Some(why);
    }
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => None,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Some(format!(
                "{}, and this process may not write it: {e}",
                mode_and_owner(&meta)
            ))
        }
        // Anything else is the write's to report.
        Err(_) => None,
    }
}

/// Why the file `meta` describes is read-only by its mode alone (no one
/// has write permission), or `None`. Looks at the mode only, opening
/// nothing (the SQLite connector's check: closing another descriptor of
/// a database would drop the locks SQLite holds on it).
#[cfg(unix)]
pub fn no_write_bit(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    (meta.permissions().mode() & 0o222 == 0)
        .then(|| format!("{}: no one has write permission", mode_and_owner(meta)))
}

#[cfg(not(unix))]
pub fn no_write_bit(meta: &std::fs::Metadata) -> Option<String> {
    meta.permissions()
        .readonly()
        .then(|| "it is marked read-only".to_owned())
}

/// `mode 0444, owner uid 1000`, for messages.
#[cfg(unix)]
fn mode_and_owner(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    format!(
        "mode {:04o}, owner uid {}",
        meta.permissions().mode() & 0o7777,
        meta.uid()
    )
}

#[cfg(not(unix))]
fn mode_and_owner(_meta: &std::fs::Metadata) -> String {
    "its permissions".to_owned()
}

/// Removes the temporary files an earlier write of the same target left
/// in `dir` (`.{name}.XXXXXX.tmp`: the process was killed between creating
/// it and renaming it over the target). One export of a target runs at a
/// time (its MA's lease), so none is being written. Best effort: what
/// cannot be removed is left and logged.
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
        else {
            continue;
        };
        // `tempfile`'s random part: six letters or digits.
        if middle.len() != 6 || !middle.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(
                file = %path.display(),
                "removed the temporary file an interrupted export left"
            ),
            Err(e) => tracing::warn!(
                file = %path.display(),
                error = %e,
                "cannot remove the temporary file an interrupted export left"
            ),
        }
    }
}

/// The file `path` names, through symbolic links (at most 40, as the
/// kernel), also when the last one points to a file not made yet; `path`
/// itself when it is no link. A link in a folder that others may write
/// (group or world writable, as a drop folder) is not followed: one
/// planted there would send the export over any file the service may
/// write (its store); the link is then replaced by the file, as before.
fn through_links(path: &Path) -> PathBuf {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() && !others_may_write(&folder(&at)) => {
                match std::fs::read_link(&at) {
                    Ok(to) if to.is_absolute() => at = to,
                    Ok(to) => at = folder(&at).join(to),
                    Err(_) => return at,
                }
            }
            _ => return at,
        }
    }
    at
}

/// Whether users other than the folder's owner may create files in it.
#[cfg(unix)]
fn others_may_write(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).map_or(true, |m| m.permissions().mode() & 0o022 != 0)
}

#[cfg(not(unix))]
fn others_may_write(_dir: &Path) -> bool {
    false
}

#[cfg(unix)]
fn set_default_permissions(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_default_permissions(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_folder(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_folder(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_watermark_should_parse_back() {
        let f = Fingerprint {
            size: 42,
            mtime_ns: 1_700_000_000_000_000_000,
            hash: 0xdead_beef,
        };
        assert_eq!(Fingerprint::parse(&f.to_watermark()), Some(f));
        assert_eq!(Fingerprint::parse("rowversion:12"), None);
    }

    /// A temporary file a killed export left beside its target (between
    /// creating it and renaming it) is removed by the next write of that
    /// target; other files are not (found by a review: they stayed for
    /// ever, one per killed export).
    #[test]
    fn a_write_should_remove_the_temporary_files_an_interrupted_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "id\n").unwrap();
        let left = dir.path().join(".out.csv.Ab3xYz.tmp");
        std::fs::write(&left, "id\nhalf").unwrap();
        let kept = [
            ".out.csv.notes.tmp",
            ".other.csv.Ab3xYz.tmp",
            "out.csv.Ab3xYz.tmp",
        ];
        for name in kept {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        write_atomically(&target, |w| w.write_all(b"id\n1\n")).unwrap();
        assert!(!left.exists());
        for name in kept {
            assert!(dir.path().join(name).exists(), "{name}");
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".out.csv.") && n.ends_with(".tmp") && n.len() == 19)
            .collect();
        assert!(names.is_empty(), "{names:?}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "id\n1\n");
    }

    /// A target that is a symbolic link (to a file, or to one not made
    /// yet) is written where it points; the link stays a link (found by a
    /// black-box review: the link was replaced by a file, and the real
    /// file never changed).
    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_should_be_written_through() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/out.csv"), "id\n").unwrap();
        let link = dir.path().join("out.csv");
        std::os::unix::fs::symlink("real/out.csv", &link).unwrap();
        write_atomically(&link, |w| w.write_all(b"id\n1\n")).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("real/out.csv")).unwrap(),
            "id\n1\n"
        );
        // Dangling: the file it names is made.
        let dangling = dir.path().join("new.csv");
        std::os::unix::fs::symlink(dir.path().join("real/new.csv"), &dangling).unwrap();
        write_atomically(&dangling, |w| w.write_all(b"x\n")).unwrap();
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("real/new.csv")).unwrap(),
            "x\n"
        );
        // In a folder others may write, a link is not followed (a planted
        // one would send the export over the store): it is replaced.
        use std::os::unix::fs::PermissionsExt;
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let store = dir.path().join("store.db");
        std::fs::write(&store, "precious").unwrap();
        let planted = shared.join("out.csv");
        std::os::unix::fs::symlink(&store, &planted).unwrap();
        write_atomically(&planted, |w| w.write_all(b"id\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&store).unwrap(), "precious");
        assert!(
            !std::fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
