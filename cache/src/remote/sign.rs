//! Signed entries: with a signing key, an entry carries an HMAC-SHA256 over
//! its node key and the digests of everything it refers to, and a reader
//! with the same key takes only entries whose signature checks. Someone who
//! can write to the cache but lacks the key (a pull request's CI job) can
//! then not plant a result for a trusted build to use.

use crate::{BlobDigest, NodeKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the signature lives behind in the entry's metadata.
const PREFIX: &str = "ov-hmac-sha256=";

/// A signing key (the bytes of `OV_CACHE_SIGNING_KEY`). Its Debug hides it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A key from its bytes; `None` when empty (an empty key protects
    /// nothing, and an unset variable often reads as empty).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<SigningKey> {
        let bytes = bytes.into();
        (!bytes.is_empty()).then_some(SigningKey(bytes))
    }

    fn mac(&self, key: &NodeKey, record: &BlobDigest, blobs: &[BlobDigest]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        // Fixed-width fields in a fixed order: no two entries sign the same
        // bytes.
        mac.update(b"ov remote cache entry v1\0");
        mac.update(key.to_string().as_bytes());
        mac.update(record.as_bytes());
        let mut sorted = blobs.to_vec();
        sorted.sort();
        for b in &sorted {
            mac.update(b.as_bytes());
        }
        mac
    }

    /// The signature to store with the entry.
    pub fn sign(&self, key: &NodeKey, record: &BlobDigest, blobs: &[BlobDigest]) -> String {
        let tag = self.mac(key, record, blobs).finalize().into_bytes();
        format!("{PREFIX}{}", hex::encode(tag))
    }

    /// Whether `stored` (the entry's metadata) is this key's signature of
    /// the entry. Compared in constant time.
    pub fn verify(
        &self,
        stored: &str,
        key: &NodeKey,
        record: &BlobDigest,
        blobs: &[BlobDigest],
    ) -> bool {
        let Some(tag) = stored
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        self.mac(key, record, blobs).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;

    #[test]
    fn a_signature_checks_only_with_its_key_and_its_entry() {
        let k = SigningKey::new(b"secret".to_vec()).unwrap();
        let other = SigningKey::new(b"other".to_vec()).unwrap();
        let key = NodeKey::of_bytes(b"n");
        let rec = BlobDigest::of_bytes(b"record");
        let blobs = [BlobDigest::of_bytes(b"a"), BlobDigest::of_bytes(b"b")];
        let sig = k.sign(&key, &rec, &blobs);
        assert!(k.verify(&sig, &key, &rec, &blobs));
        // Blob order does not matter; content does.
        assert!(k.verify(&sig, &key, &rec, &[blobs[1], blobs[0]]));
        assert!(!other.verify(&sig, &key, &rec, &blobs));
        assert!(!k.verify(&sig, &NodeKey::of_bytes(b"m"), &rec, &blobs));
        assert!(!k.verify(&sig, &key, &blobs[0], &blobs));
        assert!(!k.verify(&sig, &key, &rec, &blobs[..1]));
        assert!(!k.verify("", &key, &rec, &blobs));
        assert!(!k.verify(&sig.replace('=', ":"), &key, &rec, &blobs));
        assert!(SigningKey::new(Vec::new()).is_none());
        assert_eq!(format!("{k:?}"), "SigningKey(***)");
    }
}
