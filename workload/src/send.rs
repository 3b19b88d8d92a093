//! Sends pre-encoded OTLP export requests over gRPC or HTTP/protobuf: what the load generator,
//! the demo and the benchmarks share. Requests are encoded once and sent as bytes, so the sender
//! spends its CPU on the network, not on re-encoding.

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use rewind_agent_proto::{ExportTraceServiceResponse, OTLP_TRACE_EXPORT_PATH};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grpc" => Ok(Self::Grpc),
            "http" | "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(format!("unknown protocol {other:?}; grpc or http")),
        }
    }
}

#[derive(Debug)]
pub enum SendError {
    /// The collector asked to retry later (gRPC UNAVAILABLE, HTTP 429/503).
    Retryable(String),
    Failed(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Retryable(m) => write!(f, "retryable: {m}"),
            Self::Failed(m) => write!(f, "{m}"),
        }
    }
}

enum Inner {
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
    Http { client: reqwest::Client, url: String },
}

pub struct Sender {
    inner: Inner,
    token: Option<String>,
}

impl Sender {
    /// `endpoint`: `http://host:port` of the collector's gRPC or HTTP listener.
    pub async fn connect(endpoint: &str, protocol: Protocol, token: Option<String>) -> Result<Self, SendError> {
        let inner = match protocol {
            Protocol::Grpc => {
                let channel = tonic::transport::Channel::from_shared(endpoint.to_string())
                    .map_err(|e| SendError::Failed(format!("endpoint {endpoint:?}: {e}")))?
                    .connect()
                    .await
                    .map_err(|e| SendError::Failed(format!("connecting to {endpoint}: {e}")))?;
                Inner::Grpc(tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX))
            }
            Protocol::HttpProtobuf => Inner::Http {
                client: reqwest::Client::new(),
                url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            },
        };
        Ok(Self { inner, token })
    }

    pub async fn send(&mut self, request: Bytes) -> Result<ExportTraceServiceResponse, SendError> {
        match &mut self.inner {
            Inner::Grpc(grpc) => {
                let mut req = tonic::Request::new(request);
                if let Some(t) = &self.token {
                    let v = format!("Bearer {t}")
                        .parse()
                        .map_err(|_| SendError::Failed("token is not a valid header".into()))?;
                    req.metadata_mut().insert("authorization", v);
                }
                grpc.ready().await.map_err(|e| SendError::Retryable(e.to_string()))?;
                let path = http::uri::PathAndQuery::from_static(OTLP_TRACE_EXPORT_PATH);
                match grpc.unary(req, path, PreEncoded).await {
                    Ok(r) => Ok(r.into_inner()),
                    Err(s) if s.code() == tonic::Code::Unavailable => {
                        Err(SendError::Retryable(s.message().to_string()))
                    }
                    Err(s) => Err(SendError::Failed(format!("{:?}: {}", s.code(), s.message()))),
                }
            }
            Inner::Http { client, url } => {
                let mut req = client.post(url.as_str()).header("content-type", "application/x-protobuf").body(request);
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await.map_err(|e| SendError::Retryable(e.to_string()))?;
                let status = resp.status();
                let body = resp.bytes().await.map_err(|e| SendError::Retryable(e.to_string()))?;
                match status.as_u16() {
                    200 => ExportTraceServiceResponse::decode(body).map_err(|e| SendError::Failed(e.to_string())),
                    429 | 502 | 503 | 504 => Err(SendError::Retryable(format!("HTTP {status}"))),
                    _ => Err(SendError::Failed(format!("HTTP {status}"))),
                }
            }
        }
    }
}

/// Sends already-encoded requests as they are.
#[derive(Clone, Copy, Default)]
pub struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;
    fn encoder(&mut self) -> Self {
        PreEncoded
    }
    fn decoder(&mut self) -> Self {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        let b = src.copy_to_bytes(src.remaining());
        ExportTraceServiceResponse::decode(b).map(Some).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}
