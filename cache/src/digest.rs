//! Digest newtypes. All are blake3-256; the type says what was hashed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Behaviour shared by every 32-byte blake3 digest type.
pub trait Digest: Sized + Copy {
    /// Wraps raw digest bytes.
    fn from_bytes(bytes: [u8; 32]) -> Self;
    /// The raw digest bytes.
    fn as_bytes(&self) -> &[u8; 32];
    /// blake3 of `data`.
    fn of_bytes(data: &[u8]) -> Self {
        Self::from_bytes(*blake3::hash(data).as_bytes())
    }
    /// The first `n` hex characters, for humans (`a1b2c3…`).
    fn short(&self, n: usize) -> String {
        let hex = hex(self.as_bytes());
        hex[..n.min(hex.len())].to_string()
    }
}

/// A digest string that is not 64 lowercase hex characters.
#[derive(Debug, thiserror::Error)]
#[error("not a digest (want 64 hex characters): {0:?}")]
pub struct DigestParseError(String);

fn hex(bytes: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

fn parse_hex(s: &str) -> Result<[u8; 32], DigestParseError> {
    let err = || DigestParseError(s.to_string());
    if s.len() != 64 {
        return Err(err());
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = (nib(chunk[0]).ok_or_else(err)? << 4) | nib(chunk[1]).ok_or_else(err)?;
    }
    Ok(out)
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; 32]);

        impl Digest for $name {
            fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }
            fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short(12))
            }
        }

        impl FromStr for $name {
            type Err = DigestParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex(s).map(Self)
            }
        }
    };
}

digest_type!(
    /// The action key of a node: blake3 over its rule tag, its resolved spec,
    /// its source digests and the digests of what it depends on.
    NodeKey
);
digest_type!(
    /// The digest of one file's contents.
    FileDigest
);
digest_type!(
    /// The digest of a file tree: relative paths, modes and file digests.
    TreeDigest
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let k = NodeKey::of_bytes(b"x");
        assert_eq!(k.to_string().len(), 64);
        assert_eq!(k.to_string().parse::<NodeKey>().unwrap(), k);
        assert_eq!(k.short(8), k.to_string()[..8]);
    }

    #[test]
    fn rejects_bad_text() {
        assert!("abc".parse::<NodeKey>().is_err());
        assert!("Z".repeat(64).parse::<FileDigest>().is_err());
        assert!("A".repeat(64).parse::<FileDigest>().is_err());
    }
}
