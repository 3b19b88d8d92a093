//! One module per resource of the API.

pub mod health;
pub mod histogram;
pub mod replay;
pub mod servermap;
pub mod services;
pub mod sql;
pub mod traces;
pub mod xlog;

use std::time::Instant;

use axum::Json;
use rewind_storage::interrupt::Interrupt;
use rewind_storage::StorageError;

use crate::error::QueryError;
use crate::state::{QueryState, ReadKind, LOOKUPS_PER_SCAN};

/// Answer memory reserved by a read whose size is not known before it runs (a map, a replay, the
/// finder, a comparison): an estimate with room, not a measured bound; see the note on #15.
pub(crate) const DEFAULT_RESERVE: usize = 64 << 20;
/// The same for a trace read by id (a trace of ten thousand spans answers about 15 MB of JSON).
pub(crate) const LOOKUP_RESERVE: usize = 16 << 20;

/// Runs a store read off the async runtime, within the query limits: a slot (among
/// --query-concurrency for scans, `LOOKUPS_PER_SCAN` times as many for trace reads by id),
/// `reserve` bytes of --query-memory (else 503, retry later), and --query-timeout, past which
/// the read is interrupted at its next page. The slot and the memory stay taken until the read
/// has really stopped, not only until the client stops waiting.
pub(crate) async fn run<T: Send + 'static>(
    st: &QueryState,
    kind: ReadKind,
    reserve: usize,
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    let limits = st.limits.clone();
    if reserve > limits.memory_bytes {
        return Err(QueryError::TooLarge(format!(
            "the answer could take {reserve} bytes, more than --query-memory ({}); ask for fewer points",
            limits.memory_bytes
        )));
    }
    let slots = match kind {
        ReadKind::Scan => &limits.scans,
        ReadKind::Lookup => &limits.lookups,
    };
    let slot = slots.clone().try_acquire_owned().map_err(|_| {
        crate::metrics::refused("busy");
        QueryError::Busy(match kind {
            ReadKind::Scan => "every scan slot (--query-concurrency) is taken".into(),
            ReadKind::Lookup => format!("every trace-read slot ({LOOKUPS_PER_SCAN} x --query-concurrency) is taken"),
        })
    })?;
    let memory = limits.memory.clone().try_acquire_many_owned(reserve as u32).map_err(|_| {
        crate::metrics::refused("memory");
        QueryError::Busy("the answers being built hold --query-memory".into())
    })?;
    let interrupt = Interrupt::new(Instant::now() + limits.timeout);
    let running = interrupt.clone();
    let task = tokio::task::spawn_blocking(move || {
        let answer = running.run(f);
        drop((slot, memory));
        answer
    });
    // A little past the deadline: the read itself notices it at its next page and says so.
    match tokio::time::timeout(limits.timeout + std::time::Duration::from_millis(500), task).await {
        Ok(Ok(Err(QueryError::Storage(StorageError::Interrupted)))) | Err(_) => {
            interrupt.cancel();
            crate::metrics::refused("timeout");
            Err(QueryError::Timeout(limits.timeout))
        }
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => Err(QueryError::Internal(e.to_string())),
    }
}

/// `run` for a store read answered as JSON.
pub(crate) async fn blocking<T: Send + 'static>(
    st: &QueryState,
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<Json<T>, QueryError> {
    run(st, ReadKind::Scan, DEFAULT_RESERVE, move || f().map_err(QueryError::from)).await.map(Json)
}
