//! One error enum for both front ends: each error knows its gRPC code and its HTTP status, as the
//! OTLP specification pairs them.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("malformed request: {0}")]
    InvalidArgument(String),
    #[error("request of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "request of {wire} bytes holds {what}, about {decoded} bytes once decoded: more than the \
         {budget} bytes the ingest budget (--queue-bytes) admits for one request; send fewer items per request"
    )]
    DecodesTooLarge { wire: usize, decoded: usize, budget: usize, what: String },
    #[error("ingest queue is full ({queued} of {budget} bytes in flight); retry later")]
    Overloaded { queued: usize, budget: usize },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    #[error("the export took longer than {0:?} (--export-timeout); retry later")]
    TimedOut(Duration),
    #[error("missing or wrong bearer token")]
    Unauthenticated,
    #[error("unsupported content type {0:?}; use application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}; use gzip or identity")]
    UnsupportedEncoding(String),
}

/// How long a client should wait before retrying an overloaded or unavailable collector.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

impl CollectorError {
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Self::InvalidArgument(_) | Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                tonic::Code::InvalidArgument
            }
            Self::TooLarge { .. } | Self::DecodesTooLarge { .. } => tonic::Code::ResourceExhausted,
            Self::Overloaded { .. } | Self::Unavailable(_) | Self::TimedOut(_) => tonic::Code::Unavailable,
            Self::Unauthenticated => tonic::Code::Unauthenticated,
        }
    }

    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument(_) | Self::UnsupportedEncoding(_) => S::BAD_REQUEST,
            Self::TooLarge { .. } | Self::DecodesTooLarge { .. } => S::PAYLOAD_TOO_LARGE,
            Self::Overloaded { .. } => S::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::TimedOut(_) => S::SERVICE_UNAVAILABLE,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::UnsupportedMediaType(_) => S::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(self, Self::Overloaded { .. } | Self::Unavailable(_) | Self::TimedOut(_))
    }

    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "invalid",
            Self::TooLarge { .. } => "too_large",
            Self::DecodesTooLarge { .. } => "decodes_too_large",
            Self::Overloaded { .. } => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::TimedOut(_) => "timeout",
            Self::Unauthenticated => "unauthenticated",
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => "unsupported",
        }
    }

    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), self.to_string())
    }
}
