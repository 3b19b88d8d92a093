//! An admitted request's bytes to a batch the writer takes: decoding, validation and conversion,
//! and the write-ahead-log encoding. Synchronous, for the blocking pool (and for benchmarks that
//! measure the ingest path without a network).

use prost::Message;
use rewind_agent_proto::agent::ExportXLogRequest;
use rewind_storage::{AttributeKeys, EncodedBatch};

use crate::census::{self, Census};
use crate::convert::{convert, Limits};
use crate::error::CollectorError;
use crate::ingest::{Format, Payload};

/// What conversion validates against.
pub struct Rules<'a> {
    pub limits: &'a Limits,
    /// The store's attribute-key registry.
    pub keys: &'a AttributeKeys,
    pub now_ns: u64,
    /// Spans starting earlier are past retention.
    pub min_start_ns: u64,
}

/// A decoded request: the batch, and the OTLP partial-success fields.
pub struct Decoded {
    pub batch: EncodedBatch,
    pub rejected: u64,
    pub message: String,
}

/// What a request would decode into, from one pass over its bytes without decoding it.
pub fn census_of(payload: Payload, body: &[u8]) -> Result<Census, CollectorError> {
    match payload {
        Payload::Traces(Format::Protobuf) => census::otlp_protobuf(body),
        Payload::Traces(Format::Json) => census::otlp_json(body),
        Payload::XLog => census::xlog_protobuf(body),
        Payload::Zipkin(Format::Json) => census::zipkin_json(body),
        Payload::Zipkin(Format::Protobuf) => census::zipkin_protobuf(body),
    }
    .map_err(|e| CollectorError::InvalidArgument(format!("invalid {}: {e}", payload.format_name())))
}

pub fn decode(body: &[u8], payload: Payload, rules: &Rules<'_>) -> Result<Decoded, CollectorError> {
    let invalid = |e: prost::DecodeError| CollectorError::InvalidArgument(format!("invalid protobuf: {e}"));
    let Rules { limits, keys, now_ns, min_start_ns } = *rules;
    Ok(match payload {
        Payload::Traces(format) => {
            let converted = match format {
                // Straight into spans, no prost structs on the way (`wire`).
                Format::Protobuf => crate::wire::convert(body, limits, keys, now_ns, min_start_ns)
                    .map_err(|e| CollectorError::InvalidArgument(format!("invalid protobuf: {e}")))?,
                Format::Json => {
                    let req = crate::json::decode(body).map_err(CollectorError::InvalidArgument)?;
                    convert(req, limits, keys, now_ns, min_start_ns)
                }
            };
            let message = converted.message();
            Decoded { batch: EncodedBatch::new(converted.items), rejected: converted.rejected, message }
        }
        Payload::Zipkin(format) => {
            let req = match format {
                Format::Json => crate::zipkin::from_json(body),
                Format::Protobuf => crate::zipkin::from_protobuf(body),
            }
            .map_err(CollectorError::InvalidArgument)?;
            let converted = convert(req, limits, keys, now_ns, min_start_ns);
            let message = converted.message();
            Decoded { batch: EncodedBatch::new(converted.items), rejected: converted.rejected, message }
        }
        Payload::XLog => {
            let req = ExportXLogRequest::decode(body).map_err(invalid)?;
            let converted = crate::xlog::convert(req, limits, keys, now_ns, min_start_ns);
            let message = converted.message();
            Decoded { batch: EncodedBatch::xlogs(converted.items), rejected: converted.rejected, message }
        }
    })
}
