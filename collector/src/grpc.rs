//! OTLP/gRPC `TraceService/Export`, served with a pass-through codec so that decoding happens on
//! the blocking pool (in `Ingest`), not on the async runtime's threads.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use prost::Message;
use rewind_agent_proto::{ExportTracePartialSuccess, ExportTraceServiceResponse, OTLP_TRACE_EXPORT_PATH};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::ingest::{Format, Ingest};

#[derive(Clone)]
pub struct OtlpTraceService {
    ingest: Arc<Ingest>,
}

impl OtlpTraceService {
    pub fn new(ingest: Arc<Ingest>) -> Self {
        Self { ingest }
    }
}

impl tonic::server::NamedService for OtlpTraceService {
    const NAME: &'static str = rewind_agent_proto::OTLP_TRACE_SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B> tower::Service<http::Request<B>> for OtlpTraceService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move {
            if req.uri().path() != OTLP_TRACE_EXPORT_PATH {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            // Checked before the body is read: an unauthenticated client costs no decoding.
            let auth = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
            if let Err(e) = ingest.check_token(auth) {
                return Ok(e.to_status().into_http());
            }
            let max = ingest.config().max_message_bytes;
            let mut grpc = tonic::server::Grpc::new(PassThrough)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .apply_max_message_size_config(Some(max), None);
            let mut res = grpc.unary(Export(ingest), req).await;
            // tonic answers an oversized message with OUT_OF_RANGE; OTLP asks for
            // RESOURCE_EXHAUSTED (without retry info). Export itself never says OUT_OF_RANGE.
            let out_of_range = http::HeaderValue::from(tonic::Code::OutOfRange as i32);
            if res.headers().get("grpc-status") == Some(&out_of_range) {
                res.headers_mut().insert("grpc-status", http::HeaderValue::from(tonic::Code::ResourceExhausted as i32));
            }
            Ok(res)
        })
    }
}

struct Export(Arc<Ingest>);

impl tonic::server::UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Result<tonic::Response<ExportTraceServiceResponse>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = self.0.clone();
        Box::pin(async move {
            let outcome =
                ingest.export(request.into_inner(), Format::Protobuf, "grpc").await.map_err(|e| e.to_status())?;
            Ok(tonic::Response::new(response(outcome.rejected, outcome.message)))
        })
    }
}

pub fn response(rejected: u64, message: String) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (rejected > 0 || !message.is_empty())
            .then_some(ExportTracePartialSuccess { rejected_spans: rejected as i64, error_message: message }),
    }
}

/// Hands the request message over undecoded; encodes the response with prost.
#[derive(Clone, Copy)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = PassThrough;
    type Decoder = PassThrough;

    fn encoder(&mut self) -> Self::Encoder {
        PassThrough
    }

    fn decoder(&mut self) -> Self::Decoder {
        PassThrough
    }
}

impl Encoder for PassThrough {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for PassThrough {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // Splits the message off tonic's buffer without copying it.
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}
