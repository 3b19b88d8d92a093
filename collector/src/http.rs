//! OTLP/HTTP `POST /v1/traces`: protobuf or JSON, optionally gzip'd. Answers in the request's
//! content type, errors as `google.rpc.Status`.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;
use rewind_agent_proto::RpcStatus;

use crate::error::{CollectorError, RETRY_AFTER};
use crate::grpc::response;
use crate::ingest::{Admission, Format, Ingest, Payload};

pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new().route("/v1/traces", post(export)).route("/api/v2/spans", post(zipkin)).with_state(ingest)
}

/// Zipkin v2 `POST /api/v2/spans`: a JSON array of spans or a protobuf `ListOfSpans`
/// (`zipkin/`), answered 202 as Zipkin does, errors in plain text; the same budget, limits and
/// durable write as OTLP.
async fn zipkin(State(ingest): State<Arc<Ingest>>, headers: HeaderMap, body: Body) -> Response {
    // No content type is JSON, as Zipkin's own server and curl users assume.
    let answer = match mime_of(&headers) {
        (JSON | "", _) => receive(&ingest, &headers, body, Payload::Zipkin(Format::Json), "zipkin_json").await,
        (PROTOBUF, _) => receive(&ingest, &headers, body, Payload::Zipkin(Format::Protobuf), "zipkin_protobuf").await,
        (_, ct) => Err(CollectorError::UnsupportedMediaType(format!(
            "{ct} (Zipkin spans are taken as v2 JSON, application/json, or protobuf, application/x-protobuf; \
             not thrift)"
        ))),
    };
    match answer {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => with_error_headers((e.http_status(), e.to_string()).into_response(), &e),
    }
}

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The request's media type, lower-cased and without parameters, beside the header as sent (for
/// error messages); both empty when there is none.
fn mime_of(headers: &HeaderMap) -> (&'static str, &str) {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let known = match mime.as_str() {
        PROTOBUF | "application/protobuf" => PROTOBUF,
        JSON => JSON,
        "" => "",
        _ => "unknown",
    };
    (known, ct)
}

async fn export(State(ingest): State<Arc<Ingest>>, headers: HeaderMap, body: Body) -> Response {
    let format = match mime_of(&headers) {
        (PROTOBUF, _) => Format::Protobuf,
        (JSON, _) => Format::Json,
        // Errors before the content type is known are answered in protobuf, OTLP's default.
        (_, ct) => return error(Format::Protobuf, &CollectorError::UnsupportedMediaType(ct.to_owned())),
    };
    let transport = if format == Format::Json { "http_json" } else { "http_protobuf" };
    match receive(&ingest, &headers, body, Payload::Traces(format), transport).await {
        Ok(o) => success(format, o.rejected, o.message),
        Err(e) => error(format, &e),
    }
}

/// One export over HTTP: the body's upload and the durable write, all within
/// --export-timeout (a client that trickles its body in holds its connection, and the bytes it
/// sent, only that long).
async fn receive(
    ingest: &Ingest,
    headers: &HeaderMap,
    body: Body,
    payload: Payload,
    transport: &'static str,
) -> Result<crate::ingest::Outcome, CollectorError> {
    let work = async {
        let (bytes, admitted) = read_body(ingest, headers, body).await.inspect_err(|e| {
            crate::metrics::refused(transport, e.reason());
        })?;
        ingest.export_admitted(bytes, admitted, payload, transport).await
    };
    ingest.timed(transport, work).await.and_then(|r| r)
}

/// Past the limit the body is still read, up to this much more, and thrown away: a client that is
/// still writing when the 413 comes would otherwise see a broken pipe instead of the answer.
const DRAIN_MAX: usize = 64 << 20;

/// Reads the body, paying for its bytes from the ingest budget as they arrive (the declared
/// length up front when there is one): a body is never buffered before it is admitted.
async fn read_body(ingest: &Ingest, headers: &HeaderMap, body: Body) -> Result<(Bytes, Admission), CollectorError> {
    ingest.check_token(headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes))?;
    let limit = ingest.config().max_message_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if let Some(len) = declared.filter(|len| *len > limit + DRAIN_MAX) {
        return Err(CollectorError::TooLarge { size: len, limit });
    }
    // Refused or not, the body is read to its end (and thrown away when refused): a client still
    // writing when the answer comes would see a reset connection instead of its 429.
    let admitted = ingest.admit(declared.unwrap_or(0).min(limit));
    let (raw, admitted) = collect_limited(body, limit, admitted).await?;
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let bytes = match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => raw,
        "gzip" => tokio::task::spawn_blocking(move || gunzip(&raw, limit))
            .await
            .map_err(|e| CollectorError::Unavailable(e.to_string()))??,
        other => return Err(CollectorError::UnsupportedEncoding(other.to_owned())),
    };
    Ok((bytes, admitted))
}

async fn collect_limited(
    mut body: Body,
    limit: usize,
    mut admitted: Result<Admission, CollectorError>,
) -> Result<(Bytes, Admission), CollectorError> {
    use http_body_util::BodyExt;
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CollectorError::InvalidArgument(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total > limit + DRAIN_MAX {
                break;
            }
            let Ok(a) = admitted.as_mut() else { continue };
            if total <= limit {
                match a.cover(total) {
                    Ok(()) => buf.extend_from_slice(&data),
                    Err(e) => {
                        admitted = Err(e);
                        buf = bytes::BytesMut::new();
                    }
                }
            }
        }
    }
    if total > limit {
        return Err(CollectorError::TooLarge { size: total, limit });
    }
    Ok((buf.freeze(), admitted?))
}

/// Decompresses at most `limit` bytes: a gzip bomb ends as 413, not as memory.
fn gunzip(raw: &[u8], limit: usize) -> Result<Bytes, CollectorError> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    let mut dec = flate2::read::GzDecoder::new(raw).take(limit as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| CollectorError::InvalidArgument(format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(CollectorError::TooLarge { size: out.len(), limit });
    }
    Ok(out.into())
}

fn success(format: Format, rejected: u64, message: String) -> Response {
    let resp = response(rejected, message);
    match format {
        Format::Protobuf => ([(header::CONTENT_TYPE, PROTOBUF)], resp.encode_to_vec()).into_response(),
        Format::Json => {
            let body = match resp.partial_success {
                None => serde_json::json!({}),
                Some(p) => serde_json::json!({"partialSuccess": {
                    // int64 is a string in proto3 JSON.
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }}),
            };
            ([(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
        }
    }
}

fn error(format: Format, e: &CollectorError) -> Response {
    let status = RpcStatus { code: e.grpc_code() as i32, message: e.to_string() };
    let mut resp = match format {
        Format::Protobuf => ([(header::CONTENT_TYPE, PROTOBUF)], status.encode_to_vec()).into_response(),
        Format::Json => (
            [(header::CONTENT_TYPE, JSON)],
            serde_json::json!({"code": status.code, "message": status.message}).to_string(),
        )
            .into_response(),
    };
    *resp.status_mut() = e.http_status();
    with_error_headers(resp, e)
}

/// What every error answer carries whatever its body: `Retry-After` when a retry can help, the
/// auth scheme on a 401.
fn with_error_headers(mut resp: Response, e: &CollectorError) -> Response {
    if e.retryable() {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
    }
    if e.http_status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_bombs_and_truncated_gzip_are_refused() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 10 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(CollectorError::TooLarge { .. })));
        assert!(matches!(gunzip(&bomb[..bomb.len() / 2], 64 << 20), Err(CollectorError::InvalidArgument(_))));
        assert_eq!(gunzip(&bomb, 16 << 20).unwrap().len(), 10 << 20);
    }

    #[test]
    fn content_types_are_recognised_with_parameters() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert_eq!(mime_of(&h).0, JSON);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("Application/X-Protobuf"));
        assert_eq!(mime_of(&h).0, PROTOBUF);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(mime_of(&h), ("unknown", "text/plain"));
        assert_eq!(mime_of(&HeaderMap::new()), ("", ""));
    }
}
