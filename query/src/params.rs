//! Parameters more than one endpoint takes.

use rewind_storage::{IdError, TraceId};

use crate::error::QueryError;

/// 32 hex characters, not all zero (W3C trace context).
pub fn trace_id(s: &str) -> Result<TraceId, QueryError> {
    TraceId::parse_hex(s).map_err(|e| QueryError::BadParameter {
        param: "trace_id",
        message: match e {
            IdError::Zero => "the all-zero trace id is invalid".into(),
            _ => "a trace id is 32 hexadecimal characters".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_validated() {
        assert!(trace_id("5b8efff798038103d269b633813fc60c").is_ok());
        assert!(trace_id("5B8EFFF798038103D269B633813FC60C").is_ok());
        for bad in [
            "",
            "abc",
            "5b8efff798038103d269b633813fc60",
            "zz8efff798038103d269b633813fc60c",
            "00000000000000000000000000000000",
        ] {
            assert!(matches!(trace_id(bad), Err(QueryError::BadParameter { param: "trace_id", .. })), "{bad}");
        }
    }
}
