//! The few messages of the Remote Execution API (REAPI v2,
//! `build.bazel.remote.execution.v2`) that a Bazel HTTP cache stores under
//! `/ac/`: an `ActionResult` whose output files point at CAS blobs.
//! Field numbers are REAPI's; fields ov never sets are left out (protobuf
//! skips unknown fields when decoding, so entries written by others decode).
//!
//! bazel-remote checks that every digest an `ActionResult` names is in its
//! CAS before accepting it, and keeps those blobs alive while the entry
//! lives; that is why ov's entries list every blob here and not only in
//! their JSON record.

/// A CAS digest: sha256 hex and size.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Digest {
    /// Lowercase sha256 hex.
    #[prost(string, tag = "1")]
    pub hash: String,
    /// Size in bytes.
    #[prost(int64, tag = "2")]
    pub size_bytes: i64,
}

/// One output file of an action.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutputFile {
    /// Its path, relative to the action's root.
    #[prost(string, tag = "1")]
    pub path: String,
    /// Its content in the CAS.
    #[prost(message, optional, tag = "2")]
    pub digest: Option<Digest>,
    /// Whether it is executable.
    #[prost(bool, tag = "4")]
    pub is_executable: bool,
}

/// Details of the run that produced a result; ov keeps its signature in
/// `worker`, a free-form string servers store and never interpret.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutedActionMetadata {
    /// Free-form worker name.
    #[prost(string, tag = "1")]
    pub worker: String,
}

/// The value under `/ac/<key>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ActionResult {
    /// The outputs, each a CAS blob.
    #[prost(message, repeated, tag = "2")]
    pub output_files: Vec<OutputFile>,
    /// The action's exit code (0: ov stores only successes).
    #[prost(int32, tag = "4")]
    pub exit_code: i32,
    /// Run details.
    #[prost(message, optional, tag = "9")]
    pub execution_metadata: Option<ExecutedActionMetadata>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn encodes_with_reapi_field_numbers() {
        let r = ActionResult {
            output_files: vec![OutputFile {
                path: "a".into(),
                digest: Some(Digest {
                    hash: "ab".into(),
                    size_bytes: 3,
                }),
                is_executable: false,
            }],
            exit_code: 0,
            execution_metadata: None,
        };
        // Field 2, length-delimited (0x12), holding path (0x0a "a") and a
        // digest (0x12 …: hash 0x0a "ab", size 0x10 3).
        assert_eq!(
            r.encode_to_vec(),
            vec![0x12, 0x0b, 0x0a, 0x01, b'a', 0x12, 0x06, 0x0a, 0x02, b'a', b'b', 0x10, 0x03]
        );
        assert_eq!(ActionResult::decode(&r.encode_to_vec()[..]).unwrap(), r);
    }
}
