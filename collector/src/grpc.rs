//! The gRPC exports: OTLP's `TraceService/Export` and the native `XLogService/Export`, served
//! with a pass-through codec so that decoding happens on the blocking pool (in `Ingest`), not on
//! the async runtime's threads. Both answer by the same rules.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use rewind_agent_proto::agent::{ExportXLogPartialSuccess, ExportXLogResponse};
use rewind_agent_proto::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::ingest::{Admission, Format, Ingest, Payload};

/// One export RPC: its names, what it carries, and how it answers partial success.
pub trait Signal: Send + Sync + 'static {
    const SERVICE: &'static str;
    const PATH: &'static str;
    const PAYLOAD: Payload;
    const TRANSPORT: &'static str;
    fn response(rejected: u64, message: String) -> Bytes;
}

pub struct Traces;

impl Signal for Traces {
    const SERVICE: &'static str = rewind_agent_proto::OTLP_TRACE_SERVICE;
    const PATH: &'static str = rewind_agent_proto::OTLP_TRACE_EXPORT_PATH;
    const PAYLOAD: Payload = Payload::Traces(Format::Protobuf);
    const TRANSPORT: &'static str = "grpc";

    fn response(rejected: u64, message: String) -> Bytes {
        response(rejected, message).encode_to_vec().into()
    }
}

pub struct XLogs;

impl Signal for XLogs {
    const SERVICE: &'static str = rewind_agent_proto::XLOG_SERVICE;
    const PATH: &'static str = rewind_agent_proto::XLOG_EXPORT_PATH;
    const PAYLOAD: Payload = Payload::XLog;
    const TRANSPORT: &'static str = "grpc_xlog";

    fn response(rejected: u64, message: String) -> Bytes {
        let partial_success = (rejected > 0 || !message.is_empty())
            .then_some(ExportXLogPartialSuccess { rejected_records: rejected as i64, error_message: message });
        ExportXLogResponse { partial_success }.encode_to_vec().into()
    }
}

pub struct ExportService<S> {
    ingest: Arc<Ingest>,
    signal: PhantomData<S>,
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        Self { ingest: self.ingest.clone(), signal: PhantomData }
    }
}

impl<S> ExportService<S> {
    pub fn new(ingest: Arc<Ingest>) -> Self {
        Self { ingest, signal: PhantomData }
    }
}

pub type OtlpTraceService = ExportService<Traces>;
pub type XLogService = ExportService<XLogs>;

impl<S: Signal> tonic::server::NamedService for ExportService<S> {
    const NAME: &'static str = S::SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S: Signal, B> tower::Service<http::Request<B>> for ExportService<S>
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
            if req.uri().path() != S::PATH {
                return Ok(Status::unimplemented("unknown method").into_http());
            }
            // Checked before the body is read: an unauthenticated client costs no decoding.
            let auth = req.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
            if let Err(e) = ingest.check_token(auth) {
                return Ok(e.to_status().into_http());
            }
            let max = ingest.config().max_message_bytes;
            // The message is paid for from the ingest budget frame by frame as tonic reads it,
            // not after it has been buffered whole (a connection's streams could otherwise hold
            // 128 messages of 16 MiB before any admission).
            let admitted = match ingest.admit(0) {
                Ok(a) => Arc::new(Mutex::new(Some(a))),
                Err(e) => return Ok(e.to_status().into_http()),
            };
            let mut req = req.map(|body| Budgeted { inner: Box::pin(body), admitted: admitted.clone(), seen: 0, max });
            req.extensions_mut().insert(Slot(admitted));
            let mut grpc = tonic::server::Grpc::new(PassThrough)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .apply_max_message_size_config(Some(max), None);
            // The whole export, the body's upload included: a client trickling its message in
            // holds a connection and a stream, not the budget, and not for ever.
            let mut res =
                match ingest.timed(S::TRANSPORT, grpc.unary(Export::<S>(ingest.clone(), PhantomData), req)).await {
                    Ok(res) => res,
                    Err(e) => return Ok(e.to_status().into_http()),
                };
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

struct Export<S>(Arc<Ingest>, PhantomData<S>);

impl<S: Signal> tonic::server::UnaryService<Bytes> for Export<S> {
    type Response = Bytes;
    type Future = BoxFuture<Result<tonic::Response<Bytes>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let ingest = self.0.clone();
        let admitted = request.extensions().get::<Slot>().and_then(|s| s.0.lock().expect("not poisoned").take());
        Box::pin(async move {
            let body = request.into_inner();
            let outcome = match admitted {
                Some(a) => ingest.export_admitted(body, a, S::PAYLOAD, S::TRANSPORT).await,
                None => ingest.export(body, S::PAYLOAD, S::TRANSPORT).await,
            }
            .map_err(|e| e.to_status())?;
            Ok(tonic::Response::new(S::response(outcome.rejected, outcome.message)))
        })
    }
}

pub fn response(rejected: u64, message: String) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (rejected > 0 || !message.is_empty())
            .then_some(ExportTracePartialSuccess { rejected_spans: rejected as i64, error_message: message }),
    }
}

/// Hands the request message over undecoded; writes the response already encoded.
#[derive(Clone, Copy)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = Bytes;
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
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
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

/// The admission of the export whose body is being read, shared by the body (which pays for
/// its frames) and the service (which takes it over once the message is whole).
#[derive(Clone)]
struct Slot(Arc<Mutex<Option<Admission>>>);

/// A request body that pays for each frame from the ingest budget before handing it to tonic.
struct Budgeted<B> {
    inner: Pin<Box<B>>,
    admitted: Arc<Mutex<Option<Admission>>>,
    seen: usize,
    /// The largest message (and its 5-byte gRPC header) that tonic accepts; past it tonic
    /// refuses the message itself, so paying for more would only turn that answer into another.
    max: usize,
}

impl<B> http_body::Body for Budgeted<B>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = match self.inner.as_mut().poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            self.seen += data.remaining();
            let owed = self.seen.min(self.max + 5);
            if let Some(a) = self.admitted.lock().expect("not poisoned").as_mut() {
                if let Err(e) = a.cover(owed) {
                    return Poll::Ready(Some(Err(Box::new(e.to_status()))));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
