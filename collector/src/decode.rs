//! A request's bytes to a batch the writer takes: paying for what it decodes into, decoding,
//! validation and conversion, and the write-ahead-log encoding. Synchronous, for the blocking pool
//! (and for benchmarks that measure the ingest path without a network).

use prost::Message;
use rewind_agent_proto::agent::ExportXLogRequest;
use rewind_storage::{AttributeKeys, EncodedBatch};

use crate::census::{self, Census};
use crate::convert::{convert, Limits};
use crate::error::CollectorError;
use crate::ingest::{Format, Payload};
use crate::meter::{Bill, Meter, Pay};
use crate::wire::REFUSED;

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
fn census_of(payload: Payload, body: &[u8]) -> Result<Census, CollectorError> {
    match payload {
        Payload::Traces(Format::Protobuf) => census::otlp_protobuf(body),
        Payload::Traces(Format::Json) => census::otlp_json(body),
        Payload::XLog => census::xlog_protobuf(body),
        Payload::Zipkin(Format::Json) => census::zipkin_json(body),
        Payload::Zipkin(Format::Protobuf) => census::zipkin_protobuf(body),
    }
    .map_err(|e| CollectorError::InvalidArgument(format!("invalid {}: {e}", payload.format_name())))
}

/// OTLP/protobuf trace requests up to this size are paid for as they decode (`meter`); larger
/// ones, which no SDK's batch comes near and a hostile client might send, by the census first, so
/// that one too large for the budget is refused before any of it is built.
pub const METERED_UP_TO: usize = 1 << 20;

/// Decodes `body`, paying through `pay` for what it decodes into before building it: OTLP/protobuf
/// traces as the wire decoder counts them (`meter`), every other payload (and larger requests) at
/// once by its census.
pub fn decode(body: &[u8], payload: Payload, rules: &Rules<'_>, pay: Pay<'_>) -> Result<Decoded, CollectorError> {
    let metered = payload == Payload::Traces(Format::Protobuf) && body.len() <= METERED_UP_TO;
    if !metered {
        let census = census_of(payload, body)?;
        let due = census.decoded_bytes(body.len());
        pay(&Bill { due, ahead: due, items: &census, complete: true })?;
    }
    let invalid = |e: prost::DecodeError| CollectorError::InvalidArgument(format!("invalid protobuf: {e}"));
    let Rules { limits, keys, now_ns, min_start_ns } = *rules;
    Ok(match payload {
        Payload::Traces(format) => {
            let converted = match format {
                // Straight into spans, no prost structs on the way (`wire`): paid for as it goes,
                // or, priced whole above, only counted.
                Format::Protobuf => {
                    let mut meter = if metered { Meter::new(body.len(), pay) } else { Meter::unbounded(body.len()) };
                    match crate::wire::convert_metered(body, limits, keys, now_ns, min_start_ns, &mut meter) {
                        Ok(converted) => converted,
                        Err(e) => match meter.take_refusal() {
                            Some(refused) if e == REFUSED => {
                                drop(meter);
                                return Err(refusal(body, payload, pay, refused));
                            }
                            _ => return Err(CollectorError::InvalidArgument(format!("invalid protobuf: {e}"))),
                        },
                    }
                }
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

/// Why a request the payer refused part way was refused, as the census would have said it before
/// decoding: a request too large for the budget is "too large" (whole counts in the message),
/// never "retry later" because others held the budget when it was refused. The census walk is
/// paid for only on this path. Should the census refuse bytes the wire decoder read without
/// fault, the refusal stands: a request that may be valid must not be answered as malformed,
/// which a client would not retry.
fn refusal(body: &[u8], payload: Payload, pay: Pay<'_>, refused: CollectorError) -> CollectorError {
    let Ok(census) = census_of(payload, body) else { return refused };
    let due = census.decoded_bytes(body.len());
    match pay(&Bill { due, ahead: due, items: &census, complete: true }) {
        Err(whole) => whole,
        // The budget had room again by then: the refusal stands, to be retried.
        Ok(_) => refused,
    }
}

#[cfg(test)]
mod tests;
