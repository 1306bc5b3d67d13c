//! Digest newtypes. The blake3-256 ones ([`NodeKey`], [`FileDigest`],
//! [`TreeDigest`]) share the [`Digest`] trait; [`BlobDigest`] is sha256
//! because the store's blobs are addressed the way Bazel's remote cache
//! addresses them. The type says what was hashed.

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

/// The sha256 of a blob in the store's CAS (a rootfs tarball, an OCI
/// archive, a disk, a log).
///
/// sha256 rather than blake3 so the digest can be the key of a Bazel-style
/// remote cache (`/cas/<sha256>`) and of cacache's content store unchanged.
/// It deliberately does not implement [`Digest`], whose `of_bytes` is blake3.
/// Text form: 64 lowercase hex characters, also in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobDigest([u8; 32]);

impl BlobDigest {
    /// Wraps raw sha256 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw sha256 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// sha256 of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        let (_, hex) = cacache::Integrity::from(data).to_hex();
        Self(parse_hex(&hex).expect("Integrity::from yields one sha256: 64 hex characters"))
    }

    /// The first `n` hex characters, for humans.
    pub fn short(&self, n: usize) -> String {
        let hex = hex(&self.0);
        hex[..n.min(hex.len())].to_string()
    }

    /// The cacache address of this blob.
    pub(crate) fn to_integrity(self) -> cacache::Integrity {
        cacache::Integrity::from_hex(hex(&self.0), cacache::Algorithm::Sha256)
            .expect("64 lowercase hex characters always decode")
    }

    /// The blob digest of a cacache address, if it is exactly one canonical
    /// sha256. Decodes the base64 itself: `Integrity::to_hex` panics on a
    /// malformed digest, and addresses read from cacache's index are data
    /// from disk.
    pub(crate) fn from_integrity(sri: &cacache::Integrity) -> Option<Self> {
        match sri.hashes.as_slice() {
            [h] if h.algorithm == cacache::Algorithm::Sha256 => {
                decode_base64_32(&h.digest).map(Self)
            }
            _ => None,
        }
    }
}

/// Decodes the standard, padded base64 of exactly 32 bytes (43 characters
/// and one `=`), rejecting any other length or a non-canonical last character.
fn decode_base64_32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 44 || b[43] != b'=' {
        return None;
    }
    let mut out = [0u8; 32];
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in &b[..43] {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // 43 × 6 = 258 bits: the 2 left over must be zero.
    (n == 32 && acc == 0).then_some(out)
}

impl fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for BlobDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobDigest({})", self.short(12))
    }
}

impl FromStr for BlobDigest {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s).map(Self)
    }
}

impl Serialize for BlobDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlobDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
        assert!("0".repeat(63).parse::<BlobDigest>().is_err());
    }

    #[test]
    fn blob_digest_is_sha256_in_hex() {
        let d = BlobDigest::of_bytes(b"hello");
        let want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(d.to_string(), want);
        assert_eq!(want.parse::<BlobDigest>().unwrap(), d);
        assert_eq!(BlobDigest::from_integrity(&d.to_integrity()), Some(d));
        assert_eq!(d.to_integrity(), cacache::Integrity::from(b"hello"));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{want}\""));
        assert_eq!(serde_json::from_str::<BlobDigest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<BlobDigest>("\"xyz\"").is_err());
    }

    #[test]
    fn malformed_integrity_is_refused_not_a_panic() {
        for bad in [
            "",
            "sha256-",
            "sha256-!!!",
            "sha512-deadbeef",
            "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCR=",
        ] {
            let sri: cacache::Integrity = bad
                .parse()
                .unwrap_or_else(|_| cacache::Integrity { hashes: vec![] });
            assert_eq!(BlobDigest::from_integrity(&sri), None, "{bad:?}");
        }
        let two: cacache::Integrity = format!(
            "{} {}",
            cacache::Integrity::from(b"a"),
            cacache::Integrity::from(b"b")
        )
        .parse()
        .unwrap();
        assert_eq!(BlobDigest::from_integrity(&two), None);
    }
}
