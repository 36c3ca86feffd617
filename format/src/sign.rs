//! Ed25519 keys for signing seals: generation, key files, key ids, and the
//! [`Keyring`] of public keys a verifier pins.
//!
//! Key files are text: `termtrail-ed25519-secret <64 hex>` (mode 0600) and
//! `termtrail-ed25519-public <64 hex>`; a key's id is the first 16 hex digits
//! of SHA-256 of its 32 public key bytes (`docs/format.md` §9).

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::cast::KeyRef;
use crate::chain::{Hash, sha256};

const SECRET_TAG: &str = "termtrail-ed25519-secret";
const PUBLIC_TAG: &str = "termtrail-ed25519-public";

/// Problems with key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a key file of the expected kind.
    #[error("{0}: not a termtrail {1} key file (one line: `termtrail-ed25519-{1} <64 hex>`)")]
    Format(String, &'static str),
    /// A keyring directory holds a secret key under a `.pub` name.
    #[error("{0}: a secret key; a keyring holds public keys only (the FILE.pub keygen writes)")]
    SecretInKeyring(String),
    /// A keyring directory holds no `*.pub` file.
    #[error("{0}: no public keys (*.pub) in this keyring directory")]
    EmptyKeyring(String),
    /// No randomness from the OS.
    #[error("no randomness available: {0}")]
    Random(String),
}

/// A signing key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

/// A verifying key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

/// Shows the key's id only, never the secret.
impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(id {})", self.public().id())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Reads a secret key file.
    pub fn load(path: &Path) -> Result<SecretKey, KeyError> {
        let bytes = read_tagged(path, SECRET_TAG, "secret")?;
        Ok(SecretKey(SigningKey::from_bytes(&bytes)))
    }

    /// Writes the secret key (mode 0600) to `path` and the public key to `path.pub`.
    pub fn save(&self, path: &Path) -> Result<std::path::PathBuf, KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        fn io(p: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
            move |source| KeyError::Io {
                path: p.display().to_string(),
                source,
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io(path))?;
        writeln!(f, "{SECRET_TAG} {}", hex::encode(self.0.to_bytes())).map_err(io(path))?;
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        let pub_path = std::path::PathBuf::from(pub_path);
        std::fs::write(
            &pub_path,
            format!("{PUBLIC_TAG} {}\n", hex::encode(self.public().0.to_bytes())),
        )
        .map_err(io(&pub_path))?;
        Ok(pub_path)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs a seal hash.
    pub fn sign(&self, hash: &Hash) -> [u8; 64] {
        self.0.sign(hash).to_bytes()
    }
}

impl PublicKey {
    /// Reads a public key file (or the public half of a secret key file).
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        match read_tagged(path, PUBLIC_TAG, "public") {
            Ok(bytes) => PublicKey::from_bytes(&bytes)
                .ok_or_else(|| KeyError::Format(path.display().to_string(), "public")),
            Err(e) => SecretKey::load(path).map(|k| k.public()).map_err(|_| e),
        }
    }

    /// From the 32 raw bytes: the canonical encoding (y < p, RFC 8032
    /// §5.1.3) of a point not of small order (docs/format.md §9.1, V26).
    /// ed25519-dalek decodes non-canonical encodings and weak keys too;
    /// those would let two byte strings (two key ids) stand for one key, or
    /// a key sign everything, so they are refused here.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        let key = VerifyingKey::from_bytes(bytes).ok()?;
        let canonical = key.to_edwards().compress().to_bytes() == *bytes;
        (canonical && !key.is_weak()).then_some(PublicKey(key))
    }

    /// From 64 hex digits.
    pub fn from_hex(s: &str) -> Option<PublicKey> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).ok()?;
        PublicKey::from_bytes(&b)
    }

    /// The key id: first 16 hex digits of SHA-256 of the key bytes.
    pub fn id(&self) -> String {
        hex::encode(&sha256(self.0.as_bytes())[..8])
    }

    /// The header reference for this key.
    pub fn key_ref(&self) -> KeyRef {
        KeyRef {
            alg: "ed25519".into(),
            id: self.id(),
            public: hex::encode(self.0.as_bytes()),
        }
    }

    /// Checks a signature over a seal hash: RFC 8032's equation without the
    /// cofactor, S < L, R canonical and not of small order (ed25519-dalek's
    /// `verify_strict`; docs/format.md V26).
    pub fn verify(&self, hash: &Hash, sig: &[u8; 64]) -> bool {
        self.0
            .verify_strict(hash, &Signature::from_bytes(sig))
            .is_ok()
    }
}

/// Key files are one short line; anything longer is not one (and a keyring
/// never reads a large file whole).
const MAX_KEY_FILE: u64 = 4096;

/// The 32 bytes of a key file: after trimming ASCII whitespace at both ends,
/// exactly `tag`, one space, 64 hex digits (`docs/format.md` §9.1).
fn read_tagged(path: &Path, tag: &str, kind: &'static str) -> Result<[u8; 32], KeyError> {
    use std::io::Read;
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut raw = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE + 1)
        .read_to_end(&mut raw)
        .map_err(io)?;
    let bad = || KeyError::Format(path.display().to_string(), kind);
    if raw.len() as u64 > MAX_KEY_FILE {
        return Err(bad());
    }
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let hex_part = text
        .trim_ascii()
        .strip_prefix(tag)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| bad())?;
    Ok(out)
}

/// The public keys a verifier accepts ("pinned" keys): a recording counts
/// as signed by one of them only when its seal's signature verifies with a
/// key that is here. Built from `verify --key FILE` and `--keyring DIR`.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<PublicKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds one key.
    pub fn add(&mut self, key: PublicKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Adds the key in a public key file (or the public half of a secret
    /// key file: `--key` accepts either).
    pub fn add_file(&mut self, path: &Path) -> Result<PublicKey, KeyError> {
        let key = PublicKey::load(path)?;
        self.add(key.clone());
        Ok(key)
    }

    /// Adds every `*.pub` file in `dir` (not its subdirectories), in name
    /// order; returns how many. Any of them that is not a public key file
    /// is an error naming it, as is a directory without one.
    pub fn add_dir(&mut self, dir: &Path) -> Result<usize, KeyError> {
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| KeyError::Io { path: p, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.extension().is_some_and(|e| e == "pub") {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(KeyError::EmptyKeyring(dir.display().to_string()));
        }
        files.sort();
        for path in &files {
            // A FIFO or device named *.pub would block or never end.
            if !std::fs::metadata(path).map_err(io(path))?.is_file() {
                return Err(KeyError::Format(path.display().to_string(), "public"));
            }
            match read_tagged(path, PUBLIC_TAG, "public") {
                Ok(bytes) => self.add(
                    PublicKey::from_bytes(&bytes)
                        .ok_or_else(|| KeyError::Format(path.display().to_string(), "public"))?,
                ),
                Err(_) if SecretKey::load(path).is_ok() => {
                    return Err(KeyError::SecretInKeyring(path.display().to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(files.len())
    }

    /// Whether no key was given.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `key` is pinned (the 32 key bytes compared, not the id).
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains(key)
    }

    /// The pinned keys' ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.keys.iter().map(PublicKey::id).collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_order_and_non_canonical_keys_are_not_keys() {
        // The identity point (y = 1): of small order, it "verifies" a
        // signature R = identity, S = 0 over any message.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_none());
        let mut forged = [0u8; 64];
        forged[0] = 1;
        // y = p + 1 = 2^255 - 18: the identity again, not canonically encoded.
        let mut y = [0xffu8; 32];
        y[0] = 0xee;
        y[31] = 0x7f;
        assert!(PublicKey::from_bytes(&y).is_none());
        // A real key is still one, and a signature R = identity, S = 0 is
        // refused by it.
        let key = SecretKey::generate().unwrap().public();
        let bytes: [u8; 32] = hex::decode(key.key_ref().public)
            .unwrap()
            .try_into()
            .unwrap();
        assert!(PublicKey::from_bytes(&bytes).is_some());
        assert!(!key.verify(&[9; 32], &forged));
    }

    #[test]
    fn keys_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = SecretKey::generate().unwrap();
        let pub_path = key.save(&path).unwrap();
        let loaded = SecretKey::load(&path).unwrap();
        let public = PublicKey::load(&pub_path).unwrap();
        assert_eq!(public, key.public());
        assert_eq!(PublicKey::load(&path).unwrap(), key.public());
        let sig = loaded.sign(&[3; 32]);
        assert!(public.verify(&[3; 32], &sig));
        assert!(!public.verify(&[4; 32], &sig));
        assert!(key.save(&path).is_err(), "never overwrites a key");
        assert!(matches!(
            SecretKey::load(&pub_path),
            Err(KeyError::Format(..))
        ));
    }

    #[test]
    fn key_files_are_one_line_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate().unwrap().public();
        let hex = hex::encode(key.0.as_bytes());
        let load = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            PublicKey::load(&p)
        };
        for good in [
            format!("{PUBLIC_TAG} {hex}\n"),
            format!("{PUBLIC_TAG} {hex}"),
            format!("  {PUBLIC_TAG} {}\r\n\n", hex.to_uppercase()),
        ] {
            assert_eq!(load("good", &good).unwrap(), key, "{good:?}");
        }
        for bad in [
            format!("{PUBLIC_TAG}{hex}\n"),
            format!("{PUBLIC_TAG}\n{hex}\n"),
            format!("{PUBLIC_TAG}  {hex}\n"),
            format!("{PUBLIC_TAG} {hex} extra\n"),
            format!("{PUBLIC_TAG} {}\n", &hex[..62]),
            format!("{PUBLIC_TAG} {hex}\n{PUBLIC_TAG} {hex}\n"),
            format!("{PUBLIC_TAG} {hex}\n{}", " ".repeat(5000)),
            String::new(),
        ] {
            let e = load("bad", &bad).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!(
                    "{}/bad: not a termtrail public key file",
                    dir.path().display()
                )),
                "{bad:?}: {e}"
            );
        }
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            PublicKey::load(&dir.path().join("bin")),
            Err(KeyError::Format(..))
        ));
    }

    #[test]
    fn key_ids_are_sha256_of_the_key_bytes() {
        // RFC 8032 test 1's public key.
        let key =
            PublicKey::from_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        // sha256sum of those 32 bytes, first 16 hex digits (a value to
        // check a second implementation against: docs/format.md §9.2).
        assert_eq!(key.id(), "21fe31dfa154a261");
    }

    #[test]
    fn keyrings_read_every_pub_file_and_name_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        a.save(&dir.path().join("a")).unwrap();
        b.save(&dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("README"), "not a key").unwrap();
        let mut ring = Keyring::new();
        assert!(ring.is_empty());
        assert_eq!(
            ring.add_dir(dir.path()).unwrap(),
            2,
            "the secret keys and README are skipped"
        );
        assert!(ring.contains(&a.public()) && ring.contains(&b.public()));
        assert!(!ring.contains(&SecretKey::generate().unwrap().public()));
        let mut ids = vec![a.public().id(), b.public().id()];
        ids.sort();
        assert_eq!(ring.ids(), ids);
        // The same key twice counts once.
        ring.add_file(&dir.path().join("a.pub")).unwrap();
        assert_eq!(ring.ids().len(), 2);

        std::fs::write(dir.path().join("c.pub"), "termtrail-ed25519-public 00\n").unwrap();
        let e = Keyring::new().add_dir(dir.path()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}/c.pub: not a termtrail public key file (one line: `termtrail-ed25519-public <64 hex>`)",
                dir.path().display()
            )
        );
        std::fs::remove_file(dir.path().join("c.pub")).unwrap();
        std::fs::copy(dir.path().join("a"), dir.path().join("leaked.pub")).unwrap();
        let e = Keyring::new().add_dir(dir.path()).unwrap_err();
        assert!(
            matches!(&e, KeyError::SecretInKeyring(p) if p.ends_with("leaked.pub")),
            "{e}"
        );
        std::fs::remove_file(dir.path().join("leaked.pub")).unwrap();
        std::fs::create_dir(dir.path().join("sub.pub")).unwrap();
        let e = Keyring::new().add_dir(dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("sub.pub: not a termtrail public key file"),
            "{e}"
        );

        let empty = tempfile::tempdir().unwrap();
        let e = Keyring::new().add_dir(empty.path()).unwrap_err();
        assert!(matches!(e, KeyError::EmptyKeyring(_)), "{e}");
        let e = Keyring::new()
            .add_dir(&empty.path().join("missing"))
            .unwrap_err();
        assert!(matches!(e, KeyError::Io { .. }), "{e}");
    }
}
