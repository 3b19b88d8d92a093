//! The path every export takes, whatever its transport: admission against the byte budget,
//! decoding and conversion on the blocking pool, a durable write through the group-commit writer,
//! and only then the acknowledgment.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rewind_storage::{Store, Writer};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::convert::Limits;
use crate::decode::{decode, Decoded, Rules};
use crate::error::CollectorError;
use crate::meter::Bill;
use crate::metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Payload {
    pub(crate) fn format_name(self) -> &'static str {
        match self {
            Payload::Traces(Format::Json) => "JSON",
            Payload::Zipkin(Format::Json) => "Zipkin JSON",
            Payload::Zipkin(Format::Protobuf) => "Zipkin protobuf",
            _ => "protobuf",
        }
    }
}

/// What an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// An OTLP `ExportTraceServiceRequest`.
    Traces(Format),
    /// A native `rewind.agent.v1.ExportXLogRequest` (protobuf).
    XLog,
    /// Zipkin v2: a JSON array of spans, or a protobuf `zipkin.proto3.ListOfSpans`.
    Zipkin(Format),
}

/// What an export achieved: the OTLP partial-success fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub accepted: u64,
    pub rejected: u64,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub limits: Limits,
    /// Request bytes admitted and not yet acknowledged, at most. Decoded spans take a few times
    /// their wire size, so this bounds the collector's memory to a small multiple of it.
    pub queue_bytes: usize,
    pub max_message_bytes: usize,
    /// When set, exports must carry `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Receiving, decoding and writing one export, at most; then "retry later".
    pub export_timeout: std::time::Duration,
}

/// Past this, a request is large: it may not take the last quarter of the budget.
const SMALL_REQUEST: usize = 1 << 20;

/// What of the budget must stay free for others when a request takes `bytes` of it: a quarter
/// for a large request (what SDKs send, a batch, is well under a megabyte), so that a few huge
/// requests, hostile or not, cannot keep every client waiting; none for a small one.
fn reserve_for(bytes: usize, queue_bytes: usize) -> usize {
    if bytes > SMALL_REQUEST {
        queue_bytes / 4
    } else {
        0
    }
}

/// Budget paid for one export: grows as its body arrives and again once its decoded size is
/// known, and goes back when the work it pays for is over (dropped with the durable write's
/// acknowledgment, or with the work when it fails), not when the client stops waiting.
pub struct Admission {
    permit: OwnedSemaphorePermit,
    budget: Arc<Semaphore>,
    queue_bytes: usize,
    /// Bytes paid for by every admission alive, for the gauge: counted and published under one
    /// lock, so that the last value published is the true one.
    in_flight: Arc<std::sync::Mutex<usize>>,
}

impl Drop for Admission {
    /// The gauge follows every release, whichever path the export ended on.
    fn drop(&mut self) {
        let mut n = self.in_flight.lock().expect("not poisoned");
        *n -= self.permit.num_permits();
        metrics::queue_bytes(*n);
    }
}

impl Admission {
    /// Pays for up to `bytes` in all; "retry later" when the budget has not that much free.
    pub fn cover(&mut self, bytes: usize) -> Result<(), CollectorError> {
        let more = bytes.saturating_sub(self.permit.num_permits());
        if more == 0 {
            return Ok(());
        }
        let overloaded = || CollectorError::Overloaded {
            queued: self.queue_bytes - self.budget.available_permits(),
            budget: self.queue_bytes,
        };
        if self.budget.available_permits().saturating_sub(more) < reserve_for(bytes, self.queue_bytes) {
            return Err(overloaded());
        }
        let more = u32::try_from(more).map_err(|_| overloaded())?;
        let extra = self.budget.clone().try_acquire_many_owned(more).map_err(|_| overloaded())?;
        self.permit.merge(extra);
        let mut n = self.in_flight.lock().expect("not poisoned");
        *n += more as usize;
        metrics::queue_bytes(*n);
        Ok(())
    }
}

pub struct Ingest {
    store: Arc<Store>,
    writer: Writer,
    budget: Arc<Semaphore>,
    in_flight: Arc<std::sync::Mutex<usize>>,
    /// Decoding is CPU-bound: more of it at once than there are cores only multiplies the memory
    /// of decoded requests in flight.
    decoders: Arc<Semaphore>,
    config: IngestConfig,
}

impl Ingest {
    pub fn new(store: Arc<Store>, config: IngestConfig) -> Arc<Self> {
        assert!(config.queue_bytes >= 3 * config.max_message_bytes, "validated at start-up");
        let writer = Writer::start(store.clone());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Self {
            store,
            writer,
            budget: Arc::new(Semaphore::new(config.queue_bytes)),
            in_flight: Arc::default(),
            decoders: Arc::new(Semaphore::new(cores)),
            config,
        })
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    pub fn check_token(&self, authorization: Option<&[u8]>) -> Result<(), CollectorError> {
        let Some(token) = &self.config.token else {
            return Ok(());
        };
        if rewind_agent_proto::bearer_matches(authorization, token) {
            Ok(())
        } else {
            Err(CollectorError::Unauthenticated)
        }
    }

    /// `work` within --export-timeout (an export's upload, decoding and write together); past it,
    /// "retry later". What the work paid for stays held until the work itself ends.
    pub async fn timed<T>(&self, transport: &'static str, work: impl Future<Output = T>) -> Result<T, CollectorError> {
        let timeout = self.config.export_timeout;
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            metrics::refused(transport, "timeout");
            CollectorError::TimedOut(timeout)
        })
    }

    /// An admission for `bytes` of request (none may be asked for yet, when the length is not
    /// known before the body arrives).
    pub fn admit(&self, bytes: usize) -> Result<Admission, CollectorError> {
        let permit = self.budget.clone().try_acquire_many_owned(0).expect("the budget is never closed");
        let mut a = Admission {
            permit,
            budget: self.budget.clone(),
            queue_bytes: self.config.queue_bytes,
            in_flight: self.in_flight.clone(),
        };
        a.cover(bytes.max(1))?;
        Ok(a)
    }

    /// An export whose body is in hand (gRPC: tonic reads the message before the service runs).
    pub async fn export(
        &self,
        body: Bytes,
        payload: Payload,
        transport: &'static str,
    ) -> Result<Outcome, CollectorError> {
        match self.admit(body.len().min(self.config.max_message_bytes)) {
            Ok(admitted) => self.export_admitted(body, admitted, payload, transport).await,
            Err(e) => {
                metrics::refused(transport, e.reason());
                Err(e)
            }
        }
    }

    /// An export whose bytes are paid for already.
    pub async fn export_admitted(
        &self,
        body: Bytes,
        admitted: Admission,
        payload: Payload,
        transport: &'static str,
    ) -> Result<Outcome, CollectorError> {
        let started = Instant::now();
        metrics::received(transport, body.len());
        let result = self.export_inner(body, admitted, payload).await;
        match &result {
            Ok(o) => {
                let xlog = payload == Payload::XLog;
                metrics::exported(transport, xlog, o.accepted, o.rejected, started.elapsed().as_secs_f64())
            }
            Err(e) => metrics::refused(transport, e.reason()),
        }
        result
    }

    async fn export_inner(
        &self,
        body: Bytes,
        mut admitted: Admission,
        payload: Payload,
    ) -> Result<Outcome, CollectorError> {
        if body.len() > self.config.max_message_bytes {
            return Err(CollectorError::TooLarge { size: body.len(), limit: self.config.max_message_bytes });
        }
        admitted.cover(body.len())?;
        if self.store.backlogged() {
            return Err(CollectorError::Unavailable("sealing is behind ingest; retry later".into()));
        }

        let limits = self.config.limits.clone();
        let keys = self.store.attribute_keys().clone();
        let now = self.store.now_ns();
        let min_start = self.store.min_accepted_start_ns();
        // Owned permits go with the work, not with this future: a client that hangs up mid-request
        // drops the future, but decoding goes on until it ends and must stay paid for until then.
        let decoding = self
            .decoders
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CollectorError::Unavailable("shutting down".into()))?;
        let queue_bytes = self.config.queue_bytes;
        let decoded = tokio::task::spawn_blocking(move || {
            let wire = body.len();
            let mut pay = |bill: &Bill<'_>| {
                // The most it may ever be admitted to: past that a retry could never succeed, so
                // the answer is "too large", not "retry later".
                let admissible = queue_bytes - reserve_for(bill.due, queue_bytes);
                if bill.due > admissible {
                    return Err(CollectorError::DecodesTooLarge {
                        wire,
                        decoded: bill.due,
                        budget: admissible,
                        what: bill.describe(),
                    });
                }
                let paid = if bill.ahead <= queue_bytes - reserve_for(bill.ahead, queue_bytes) {
                    bill.ahead
                } else {
                    bill.due
                };
                admitted.cover(paid)?;
                Ok(paid)
            };
            let rules = Rules { limits: &limits, keys: &keys, now_ns: now, min_start_ns: min_start };
            let decoded = decode(&body, payload, &rules, &mut pay)?;
            drop(decoding);
            Ok::<_, CollectorError>((decoded, admitted))
        })
        .await
        .map_err(|e| CollectorError::Unavailable(format!("decoder task failed: {e}")))?;
        let (Decoded { batch, rejected, message }, admitted) = decoded?;
        let accepted = batch.len() as u64;
        if accepted > 0 {
            let (tx, rx) = oneshot::channel();
            // The permit is returned when the write is durable, whether or not anyone still waits.
            self.writer.submit(
                batch,
                Box::new(move |r| {
                    drop(admitted);
                    drop(tx.send(r));
                }),
            );
            rx.await
                .map_err(|_| CollectorError::Unavailable("writer stopped".into()))?
                .map_err(|e| CollectorError::Unavailable(e.to_string()))?;
        }
        Ok(Outcome { accepted, rejected, message })
    }

    /// Writes everything already queued, then refuses further exports as unavailable.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}
