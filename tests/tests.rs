//! End-to-end tests of the `ov` binary (and, for fuzzing, of the library's
//! loader). One harness, modules by theme:
//!
//! - `build`: `ov build` against the real podman service that
//!   `scripts/setup.sh` starts: cold and no-op builds (asserted on the
//!   recorded events), one-layer changes, early cutoff, a corrupt CAS,
//!   `kill -9` and Ctrl-C mid-build, two builds on one cache dir, a missing
//!   package, failing evals, `ov lock`, `ov cache`, `ov doctor`
//!   (`tests/fixtures/deb-tasks`, on the setup script's bookworm base).
//! - `engine_state`: what a build leaves in the engine: the user's tag on
//!   the right image after cached builds, a no-op's engine calls, the
//!   debris of a build whose engine died.
//! - `examples`: `examples/hello` (debootstrap) and `examples/web` built
//!   from nothing and their images run.
//! - `golden`: the four shared fixture projects, with every figure pinned
//!   (images, graph node and edge counts, install orders).
//! - `context`: what a layer directory may hold: sparse files built whole;
//!   sockets, fifos, devices, links out of the layer and a cache dir
//!   inside a layer refused as bad input.
//! - `cli`: commands and flags: graph formats, `build --dry-run`, target
//!   selection, `explain`, keys across edits and runs, cache-dir choice.
//! - `errors`: bad input exits 2 with `file:line:col`; warnings exit 0; the
//!   loader's shapes (includes from the repo cache, multi-document files,
//!   kind-keyed entries, `layer: {x: {from: dir}}`).
//! - `fidelity`: what ov's generator writes for the shared fixtures
//!   (`shell:` drop-ins, distro tag sections, labels, `tag: auto`), with
//!   expectations read from ov's Go sources.
//! - `fuzz`: arbitrary bytes and arbitrary YAML in each kind of file.
//! - `generate`: the rendered Containerfile steps of every image of the
//!   shared fixtures against golden files (`OV_BLESS=1` rewrites them).
//! - `incremental`: the dry run's memo against plans from scratch after
//!   random edit sequences (file contents, adds, removes, renames, YAML,
//!   `ov.lock`); an edit of layer files answered without a full plan.
//! - `inject`: no project string adds an instruction to a Containerfile
//!   or a command to a shell; what cannot be escaped is refused with
//!   file:line:col.
//! - `oci`: images kept in the cache as OCI parts: removed from the engine,
//!   they come back with their ids and no engine build.
//! - `preamble`: ov's bootstrap preamble and layer env on a Debian project
//!   (`tests/fixtures/deb-user`): the text ov's generator writes, which
//!   images share it, the checks on its fields, and the image built and
//!   run (`id`, the home, the expanded env).
//! - `store`: the store under damage and strain: damaged index lines,
//!   concurrent builds sharing work, a read-only cache dir, a full disk.
//! - `realistic`: a Debian project whose build.yml and init layer come by
//!   remote reference from a repository laid out in the repo cache: the
//!   init header is the repository's, remote layers answer to short names,
//!   and it builds end to end (a user from the preamble, a `~` env, an npm
//!   stage) and rebuilds as nothing.
//! - `remote`: the remote cache: the client against a server that fails in
//!   each way it can (500, dropped connections, stalls, cut bodies, wrong
//!   bytes), signed entries, and a second machine restoring a Debian build
//!   from the nginx WebDAV cache that `scripts/setup-cache-server.sh` starts.
//! - `regression`: one test per bug found, named after the bug (ignored,
//!   with the reason, while the bug is open).
//! - `stages`: a builder stage (build.yml's npm stage on a builder image
//!   with Debian's npm) built for real against the npm registry; its
//!   output in the final image; a no-op rebuild; a dependency change;
//!   ov's inline cargo builder (`tests/fixtures/cargo-inline`).
//! - `secrets`: passwords and tokens in engine URLs (and in a failing
//!   step's output) are masked in every message, progress mode, `ov doctor`
//!   and `ov settings`.
//!
//! - `vm_seed`: a VM's seed ISO (label `cidata`, cloud-init's files, the
//!   instance's generated key) and cloud images fetched from a server the
//!   test runs on 127.0.0.1: sidecar checksums, a resumed download, a
//!   server without ranges, a checksum mismatch; bad seed values exit 2.
//!
//! `util` holds the helpers: fixture paths, temp project copies and a runner
//! that gives every test its own cache and config dirs. Small projects made for tests
//! live in `tests/fixtures/`; most error tests start from a copy of
//! `tests/fixtures/mini` and break one thing.

mod util;
mod vm_boot;

mod browser;
mod build;
mod cli;
mod context;
mod engine_state;
mod errors;
mod examples;
mod fidelity;
mod fuzz;
mod generate;
mod golden;
mod graph_page;
mod incremental;
mod inject;
mod oci;
mod preamble;
mod realistic;
mod regression;
mod remote;
mod secrets;
mod stages;
mod store;
mod vm_disk;
mod vm_seed;
