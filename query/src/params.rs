//! Parameters more than one endpoint takes.

use rewind_storage::apm::figures::Thresholds;
use rewind_storage::{IdError, TraceId};

use crate::error::QueryError;

const NS_PER_MS: f64 = 1e6;

pub fn bad(param: &'static str, message: impl Into<String>) -> QueryError {
    QueryError::BadParameter { param, message: message.into() }
}

/// Unix milliseconds, fractions allowed down to the nanosecond (`1796031270290.25`), as the API
/// answers them. Parsed as a decimal, exactly: a float would lose the sub-microsecond digits of
/// today's timestamps, and a drag-selected box would miss the points on its edges.
pub fn unix_ms(param: &'static str, v: &str) -> Result<u64, QueryError> {
    let not_ms = || bad(param, format!("{v:?} is not Unix milliseconds, like 1796031270290 or 1796031270290.25"));
    let (whole, fraction) = match v.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return Err(not_ms()),
        None => (v, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(not_ms());
    }
    if fraction.len() > 6 {
        return Err(bad(param, "has more than 6 decimals (nanoseconds are the finest time stored)"));
    }
    let past = || bad(param, "is past the year 2262");
    let ms: u64 = whole.parse().map_err(|_| past())?;
    let ns: u64 = format!("{fraction:0<6}").parse().expect("six digits");
    // Year 2262 is where nanoseconds leave u64.
    ms.checked_mul(1_000_000).and_then(|n| n.checked_add(ns)).ok_or_else(past)
}

pub fn duration_ms(param: &'static str, v: &str) -> Result<u64, QueryError> {
    let ms: f64 = v.parse().map_err(|_| bad(param, format!("{v:?} is not a number of milliseconds")))?;
    if !ms.is_finite() || !(0.0..=1e12).contains(&ms) {
        return Err(bad(param, "must be between 0 and 10^12 milliseconds"));
    }
    Ok((ms * NS_PER_MS).round() as u64)
}

pub fn boolean(param: &'static str, v: &str) -> Result<bool, QueryError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(param, format!("{v:?} is not true or false"))),
    }
}

pub fn text(param: &'static str, v: &str) -> Result<String, QueryError> {
    if v.is_empty() {
        return Err(bad(param, "is empty"));
    }
    if v.len() > 4096 {
        return Err(bad(param, "is longer than 4096 bytes"));
    }
    Ok(v.to_owned())
}

/// The pairs of a query string as a map, each key one of `known` and given once.
pub fn unique<'a>(
    pairs: &'a [(String, String)],
    known: &[&'static str],
) -> Result<std::collections::BTreeMap<&'static str, &'a str>, QueryError> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in pairs {
        let Some(key) = known.iter().find(|n| **n == k) else {
            return Err(bad("query", format!("unknown parameter `{k}` (this endpoint takes {})", known.join(", "))));
        };
        if out.insert(*key, v.as_str()).is_some() {
            return Err(bad("query", format!("`{k}` is given twice")));
        }
    }
    Ok(out)
}

/// `from` and `to`, both required, `to` after `from`: nanoseconds.
pub fn range(p: &std::collections::BTreeMap<&'static str, &str>) -> Result<(u64, u64), QueryError> {
    let from = unix_ms("from", p.get("from").ok_or_else(|| bad("from", "is required (Unix milliseconds)"))?)?;
    let to = unix_ms("to", p.get("to").ok_or_else(|| bad("to", "is required (Unix milliseconds)"))?)?;
    if to <= from {
        return Err(bad("to", "must be after `from`"));
    }
    Ok((from, to))
}

/// A whole number within `lo..=hi`.
pub fn whole(param: &'static str, v: &str, lo: u64, hi: u64) -> Result<u64, QueryError> {
    let n: u64 = v.parse().map_err(|_| bad(param, format!("{v:?} is not a whole number")))?;
    if !(lo..=hi).contains(&n) {
        return Err(bad(param, format!("must be between {lo} and {hi}")));
    }
    Ok(n)
}

/// A range in nanoseconds as whole seconds, rounded out: statistics are kept per second.
pub fn seconds(from_ns: u64, to_ns: u64) -> (u64, u64) {
    (from_ns / 1_000_000_000, to_ns.div_ceil(1_000_000_000))
}

/// `slow_ms` and `apdex_ms`, with their defaults (see `Thresholds`).
pub fn thresholds(p: &std::collections::BTreeMap<&'static str, &str>) -> Result<Thresholds, QueryError> {
    let mut t = Thresholds::default();
    if let Some(v) = p.get("slow_ms") {
        t.slow_ms = Some(duration_ms("slow_ms", v)? as f64 / NS_PER_MS);
    }
    if let Some(v) = p.get("apdex_ms") {
        let ns = duration_ms("apdex_ms", v)?;
        if ns == 0 {
            return Err(bad("apdex_ms", "must be above 0"));
        }
        t.apdex_ms = ns as f64 / NS_PER_MS;
    }
    Ok(t)
}

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
pub(crate) mod tests {
    use super::*;

    /// A query string as the pairs axum hands over (no percent-decoding: tests do not need it).
    pub fn q(s: &str) -> Vec<(String, String)> {
        s.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

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
