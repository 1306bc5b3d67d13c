//! Claims on keys across processes: a node about to be built holds its
//! key's claim in the store until its result is recorded, so another build
//! of the same key (in another process on the same cache dir) waits and
//! then finds it cached instead of building it again.

use super::node::{blocking, Failure};
use super::Shared;
use ov_cache::NodeKey;
use petgraph::graph::NodeIndex;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a waiting build checks whether the key's claim was released.
const CLAIM_POLL: Duration = Duration::from_millis(100);

/// Claims `key` in the store, waiting while another build holds it. The
/// wait polls (no thread blocks on the lock) and stops on Ctrl-C. `None`
/// when the store cannot hold locks (e.g. it is read-only): the node is
/// then built without a claim, as before claims existed.
pub(super) async fn claim(
    sh: &Arc<Shared>,
    ix: NodeIndex,
    key: &NodeKey,
    cancel: &CancellationToken,
) -> Result<Option<ov_cache::KeyLock>, Failure> {
    let node = &sh.ws.plan.graph[ix];
    let mut told = false;
    loop {
        let store = sh.store.clone();
        let k = *key;
        match blocking(move || store.try_lock_key(&k)).await? {
            Ok(Some(lock)) => return Ok(Some(lock)),
            Ok(None) => {}
            Err(e) => {
                sh.progress.warn(&format!(
                    "{}: cannot claim the node in the store ({e}); building it without a claim",
                    node.id
                ));
                return Ok(None);
            }
        }
        if !told {
            sh.progress.line(
                &node.id,
                "waiting for another ov build of this node to finish",
            );
            told = true;
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                return Err(Failure {
                    message: "cancelled".into(),
                    output: String::new(),
                    cancelled: true,
                })
            }
            _ = tokio::time::sleep(CLAIM_POLL) => {}
        }
    }
}
