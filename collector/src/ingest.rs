//! The path every export takes, whatever its transport: admission against the byte budget,
//! decoding and conversion on the blocking pool, a durable write through the group-commit writer,
//! and only then the acknowledgment.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use rewind_agent_proto::agent::ExportXLogRequest;
use rewind_agent_proto::ExportTraceServiceRequest;
use rewind_storage::{EncodedBatch, Store, Writer};
use tokio::sync::{oneshot, Semaphore};

use crate::convert::{convert, Limits};
use crate::error::CollectorError;
use crate::metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

/// What an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// An OTLP `ExportTraceServiceRequest`.
    Traces(Format),
    /// A native `rewind.agent.v1.ExportXLogRequest` (protobuf).
    XLog,
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
}

pub struct Ingest {
    store: Arc<Store>,
    writer: Writer,
    budget: Arc<Semaphore>,
    /// Decoding is CPU-bound: more of it at once than there are cores only multiplies the memory
    /// of decoded requests in flight.
    decoders: Semaphore,
    config: IngestConfig,
}

impl Ingest {
    pub fn new(store: Arc<Store>, config: IngestConfig) -> Arc<Self> {
        assert!(config.queue_bytes >= config.max_message_bytes, "validated at start-up");
        let writer = Writer::start(store.clone());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Self {
            store,
            writer,
            budget: Arc::new(Semaphore::new(config.queue_bytes)),
            decoders: Semaphore::new(cores),
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

    pub async fn export(
        &self,
        body: Bytes,
        payload: Payload,
        transport: &'static str,
    ) -> Result<Outcome, CollectorError> {
        let started = Instant::now();
        metrics::received(transport, body.len());
        let result = self.export_inner(body, payload).await;
        // After export_inner, on every path, the request's permits are back.
        metrics::queue_bytes(self.config.queue_bytes - self.budget.available_permits());
        match &result {
            Ok(o) => {
                let xlog = payload == Payload::XLog;
                metrics::exported(transport, xlog, o.accepted, o.rejected, started.elapsed().as_secs_f64())
            }
            Err(e) => metrics::refused(transport, e.reason()),
        }
        result
    }

    async fn export_inner(&self, body: Bytes, payload: Payload) -> Result<Outcome, CollectorError> {
        if body.len() > self.config.max_message_bytes {
            return Err(CollectorError::TooLarge { size: body.len(), limit: self.config.max_message_bytes });
        }
        let weight = body.len().max(1);
        let permit =
            self.budget.clone().try_acquire_many_owned(weight as u32).map_err(|_| CollectorError::Overloaded {
                queued: self.config.queue_bytes - self.budget.available_permits(),
                budget: self.config.queue_bytes,
            })?;
        metrics::queue_bytes(self.config.queue_bytes - self.budget.available_permits());
        if self.store.backlogged() {
            return Err(CollectorError::Unavailable("sealing is behind ingest; retry later".into()));
        }

        let limits = self.config.limits.clone();
        let now = self.store.now_ns();
        let min_start = self.store.min_accepted_start_ns();
        let decoding =
            self.decoders.acquire().await.map_err(|_| CollectorError::Unavailable("shutting down".into()))?;
        let decoded = tokio::task::spawn_blocking(move || {
            let invalid = |e: prost::DecodeError| CollectorError::InvalidArgument(format!("invalid protobuf: {e}"));
            let (batch, rejected, message) = match payload {
                Payload::Traces(format) => {
                    let req = match format {
                        Format::Protobuf => ExportTraceServiceRequest::decode(body).map_err(invalid)?,
                        Format::Json => crate::json::decode(&body).map_err(CollectorError::InvalidArgument)?,
                    };
                    let converted = convert(req, &limits, now, min_start);
                    let message = converted.message();
                    (EncodedBatch::new(converted.items), converted.rejected, message)
                }
                Payload::XLog => {
                    let req = ExportXLogRequest::decode(body).map_err(invalid)?;
                    let converted = crate::xlog::convert(req, &limits, now, min_start);
                    let message = converted.message();
                    (EncodedBatch::xlogs(converted.items), converted.rejected, message)
                }
            };
            Ok::<_, CollectorError>((batch, rejected, message))
        })
        .await
        .map_err(|e| CollectorError::Unavailable(format!("decoder task failed: {e}")))?;
        drop(decoding);
        let (batch, rejected, message) = decoded?;
        let accepted = batch.len() as u64;
        if accepted > 0 {
            let (tx, rx) = oneshot::channel();
            self.writer.submit(batch, Box::new(move |r| drop(tx.send(r))));
            rx.await
                .map_err(|_| CollectorError::Unavailable("writer stopped".into()))?
                .map_err(|e| CollectorError::Unavailable(e.to_string()))?;
        }
        drop(permit);
        Ok(Outcome { accepted, rejected, message })
    }

    /// Writes everything already queued, then refuses further exports as unavailable.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}
