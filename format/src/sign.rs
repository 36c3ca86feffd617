//! Ed25519 keys for signing seals: generation, files, key ids.
//!
//! Key files are text: `termtrail-ed25519-secret <64 hex>` (mode 0600) and
//! `termtrail-ed25519-public <64 hex>`; `docs/format.md` §6.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

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
    #[error("{0}: not a termtrail {1} key file")]
    Format(String, &'static str),
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

    /// From the 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
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

    /// Checks a signature over a seal hash.
    pub fn verify(&self, hash: &Hash, sig: &[u8; 64]) -> bool {
        self.0.verify(hash, &Signature::from_bytes(sig)).is_ok()
    }
}

fn read_tagged(path: &Path, tag: &str, kind: &'static str) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bad = || KeyError::Format(path.display().to_string(), kind);
    let hex_part = text.trim().strip_prefix(tag).ok_or_else(bad)?.trim();
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| bad())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
