//! The store's key and what is done with it: sealing the values of
//! write-only and sealed attributes (see `autosync_model::secret`), opening
//! them at the moment they are sent, and generating passwords.
//!
//! The key is 32 random bytes in a file beside the store (`<store>.key`,
//! mode 0600), made on first use (published with a hard link, so two
//! processes making it at once agree on one); never in the store itself,
//! so a copy of the database alone opens nothing. Sealing is a synthetic-
//! nonce AEAD (SIV construction): the nonce is the first 12 bytes of
//! HMAC-SHA256 of the value under a MAC key, the value is encrypted with
//! ChaCha20-Poly1305 under an encryption key (both derived from the file's
//! key). The same value seals to the same text, so an unchanged source
//! imports unchanged and a changed flowed value is noticed by its tag,
//! while only the key's holder can tell what a value is.

use autosync_model::secret::{self, Secret};
use autosync_model::{PasswordPolicy, Value};
use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const AAD: &[u8] = b"autosync-sealed-v1";
const KEY_LEN: usize = 32;

/// The key of one store, read (or made) when first needed.
pub(crate) struct Secrets {
    /// `None`: a key of this process only (a store without a file).
    path: Option<PathBuf>,
    key: OnceLock<Result<Key, String>>,
}

struct Key {
    enc: LessSafeKey,
    mac: hmac::Key,
}

impl Secrets {
    /// The key file of the store at `store` (`<store>.key`).
    pub fn beside(store: &Path) -> Secrets {
        let mut name = store.as_os_str().to_owned();
        name.push(".key");
        Secrets {
            path: Some(PathBuf::from(name)),
            key: OnceLock::new(),
        }
    }

    /// A key held in memory only (for stores without a file).
    #[cfg(test)]
    pub fn in_memory() -> Secrets {
        Secrets {
            path: None,
            key: OnceLock::new(),
        }
    }

    fn key(&self) -> Result<&Key, String> {
        self.key
            .get_or_init(|| {
                let bytes = match &self.path {
                    Some(p) => read_or_make(p)?,
                    None => random_key()?,
                };
                Key::derive(&bytes)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// `plain` sealed (always the same text for the same value and key).
    pub fn seal(&self, plain: &str) -> Result<Value, String> {
        let key = self.key()?;
        let mac = hmac::sign(&key.mac, plain.as_bytes());
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&mac.as_ref()[..12]);
        let mut data = plain.as_bytes().to_vec();
        key.enc
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            .map_err(|_| "sealing a value failed".to_owned())?;
        Ok(Value::String(format!(
            "{}{}${}",
            secret::SEALED,
            hex(&nonce),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&data)
        )))
    }

    /// The clear text of a sealed value. The error never holds the value.
    pub fn open(&self, v: &Value) -> Result<String, String> {
        let Some(Secret::Sealed { tag, data }) = secret::classify(v) else {
            return Err("the value is not sealed".into());
        };
        let bad = || {
            "the sealed value cannot be opened with this store's key (was the key file replaced?)"
                .to_owned()
        };
        let nonce: [u8; 12] = unhex(tag).and_then(|n| n.try_into().ok()).ok_or_else(bad)?;
        let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(data)
            .map_err(|_| bad())?;
        let key = self.key()?;
        let plain = key
            .enc
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut bytes,
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

impl Key {
    fn derive(master: &[u8]) -> Result<Key, String> {
        let root = hmac::Key::new(hmac::HMAC_SHA256, master);
        let enc = hmac::sign(&root, b"autosync seal v1 encryption");
        let mac = hmac::sign(&root, b"autosync seal v1 nonce");
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, enc.as_ref())
            .map_err(|_| "the store's key cannot be used".to_owned())?;
        Ok(Key {
            enc: LessSafeKey::new(unbound),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac.as_ref()),
        })
    }
}

fn random_key() -> Result<Vec<u8>, String> {
    let mut key = vec![0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| "the system's random number generator failed".to_owned())?;
    Ok(key)
}

/// The key in `path`, made there (mode 0600) when there is none.
fn read_or_make(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    match std::fs::read(path) {
        Ok(bytes) => return checked(path, bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read the store's key file {shown}: {e}")),
    }
    let key = random_key()?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(&key)?;
        file.sync_all()?;
        // A hard link publishes it only if no other process did first.
        std::fs::hard_link(&temp, path)
    })();
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => {
            tracing::info!(file = %shown, "made the store's key for write-only values");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read the store's key file {shown}: {e}"))?;
            checked(path, bytes)
        }
        Err(e) => Err(format!("cannot make the store's key file {shown}: {e}")),
    }
}

fn checked(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    if bytes.len() != KEY_LEN {
        return Err(format!(
            "the store's key file {} holds {} bytes, not {KEY_LEN}",
            path.display(),
            bytes.len()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(file = %path.display(), "the store's key file is readable by others than its owner: make it mode 0600");
        }
    }
    Ok(bytes)
}

/// A password by `policy`: uniformly drawn characters, at least one of
/// each class, from the system's CSPRNG.
pub(crate) fn generate(policy: &PasswordPolicy) -> Result<String, String> {
    if let Some(p) = policy.problem() {
        return Err(p);
    }
    let rng = SystemRandom::new();
    let classes: Vec<&[u8]> = policy.classes().into_iter().map(str::as_bytes).collect();
    let all: Vec<u8> = classes.iter().flat_map(|c| c.iter().copied()).collect();
    let mut out: Vec<u8> = Vec::with_capacity(policy.length as usize);
    for c in &classes {
        out.push(c[below(&rng, c.len())?]);
    }
    while out.len() < policy.length as usize {
        out.push(all[below(&rng, all.len())?]);
    }
    // Fisher-Yates, so the guaranteed characters are anywhere.
    for i in (1..out.len()).rev() {
        let j = below(&rng, i + 1)?;
        out.swap(i, j);
    }
    String::from_utf8(out).map_err(|_| "a generated password was not text".to_owned())
}

/// A uniform number below `n` (at most 256), by rejection.
fn below(rng: &SystemRandom, n: usize) -> Result<usize, String> {
    let n = n.clamp(1, 256);
    let limit = 256 - 256 % n;
    loop {
        let mut b = [0u8; 1];
        rng.fill(&mut b)
            .map_err(|_| "the system's random number generator failed".to_owned())?;
        if usize::from(b[0]) < limit {
            return Ok(usize::from(b[0]) % n);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_should_open_to_itself_and_seal_the_same_way_twice() {
        let s = Secrets::in_memory();
        let a = s.seal("Sommer2024!").unwrap();
        assert_eq!(a, s.seal("Sommer2024!").unwrap());
        assert_ne!(a, s.seal("Sommer2024?").unwrap());
        assert!(!a.to_text().contains("Sommer"));
        assert_eq!(s.open(&a).unwrap(), "Sommer2024!");
        // Another key opens nothing, and says so without the value.
        let other = Secrets::in_memory();
        let e = other.open(&a).unwrap_err();
        assert!(e.contains("cannot be opened"), "{e}");
    }

    #[test]
    fn the_key_file_should_be_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("autosync.db");
        let sealed = Secrets::beside(&store).seal("x").unwrap();
        let file = dir.path().join("autosync.db.key");
        assert_eq!(std::fs::read(&file).unwrap().len(), KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another process (another Secrets) reads the same key.
        assert_eq!(Secrets::beside(&store).open(&sealed).unwrap(), "x");
        std::fs::write(&file, b"short").unwrap();
        let e = Secrets::beside(&store).seal("x").unwrap_err();
        assert!(e.contains("holds 5 bytes"), "{e}");
    }

    #[test]
    fn a_generated_password_should_follow_its_policy() {
        let policy = PasswordPolicy {
            length: 12,
            lower: true,
            upper: false,
            digits: true,
            symbols: true,
        };
        let classes = policy.classes();
        for _ in 0..200 {
            let p = generate(&policy).unwrap();
            assert_eq!(p.chars().count(), 12);
            assert!(p.chars().all(|c| classes.iter().any(|k| k.contains(c))));
            for k in &classes {
                assert!(p.chars().any(|c| k.contains(c)), "{p} lacks one of {k}");
            }
        }
        let none = PasswordPolicy {
            lower: false,
            upper: false,
            digits: false,
            symbols: false,
            ..PasswordPolicy::default()
        };
        assert!(generate(&none).unwrap_err().contains("no character class"));
    }
}
