//! The Jaeger API's parameter forms besides milliseconds (`endTs` and `lookback` of the
//! dependencies, read as the rest of the API reads them): Unix microseconds (`start`, `end`), Go duration strings (`minDuration=100ms`) and the
//! `tags` JSON map (or Jaeger's older repeated `tag=key:value`).

use crate::error::QueryError;
use crate::params::bad;

/// Whole Unix microseconds, as nanoseconds.
pub fn unix_micros(param: &'static str, v: &str) -> Result<u64, QueryError> {
    let us: u64 = v.parse().map_err(|_| bad(param, format!("{v:?} is not Unix microseconds")))?;
    us.checked_mul(1_000).ok_or_else(|| bad(param, "is past the year 2262"))
}

/// A Go duration (`time.ParseDuration`, as Jaeger reads `minDuration`): a sequence of decimal
/// numbers each with a unit, `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, such as `100ms`,
/// `1.5s` or `1h30m`; `0` alone is zero. Not negative. Nanoseconds.
pub fn go_duration(param: &'static str, v: &str) -> Result<u64, QueryError> {
    let wrong = || bad(param, format!("{v:?} is not a duration such as 100ms, 1.5s or 1h30m"));
    if v == "0" {
        return Ok(0);
    }
    if v.is_empty() || v.len() > 64 {
        return Err(wrong());
    }
    let mut rest = v;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(wrong)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(wrong()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(wrong());
        }
        // Digits past the 18th are below a nanosecond even in hours: Go drops them too.
        let fraction = &fraction[..fraction.len().min(18)];
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| wrong())? };
        let fraction_ns: u128 = if fraction.is_empty() {
            0
        } else {
            let digits: u128 = fraction.parse().map_err(|_| wrong())?;
            digits * per / 10u128.pow(fraction.len() as u32)
        };
        total = whole
            .checked_mul(per)
            .and_then(|n| n.checked_add(fraction_ns))
            .and_then(|n| n.checked_add(total))
            .filter(|n| *n <= u64::MAX as u128)
            .ok_or_else(|| bad(param, "is longer than 584 years"))?;
        rest = tail;
    }
    Ok(total as u64)
}

/// Tags to match: the `tags` JSON object (string values; numbers and booleans by their text),
/// then each `tag=key:value`.
pub fn tags(json: Option<&str>, pairs: &[&str]) -> Result<Vec<(String, String)>, QueryError> {
    let mut out = Vec::new();
    if let Some(j) = json {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(j)
            .map_err(|e| bad("tags", format!("is not a JSON object of tag names to values: {e}")))?;
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
                _ => return Err(bad("tags", format!("the value of {k:?} is not a string, number or boolean"))),
            };
            out.push((k, text));
        }
    }
    for p in pairs {
        let (k, v) = p.split_once(':').ok_or_else(|| bad("tag", format!("{p:?} is not key:value")))?;
        out.push((k.to_owned(), v.to_owned()));
    }
    if out.len() > 16 {
        return Err(bad("tags", "at most 16 tags"));
    }
    if let Some((k, v)) = out.iter().find(|(k, v)| k.is_empty() || k.len() > 4096 || v.len() > 4096) {
        return Err(bad("tags", format!("tag {k:?}={v:?}: keys are 1 to 4096 bytes, values at most 4096")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_go_reads_them() {
        for (s, ns) in [
            ("0", 0),
            ("100ms", 100_000_000),
            ("1.5s", 1_500_000_000),
            ("1h30m", 5_400_000_000_000),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("250μs", 250_000),
            ("7ns", 7),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("2m3.25s", 123_250_000_000),
            ("0.000000001s", 1),
            ("0.0000000001s", 0),
            ("1.0000000000000000000001h", 3_600_000_000_000),
        ] {
            assert_eq!(go_duration("d", s).unwrap(), ns, "{s}");
        }
        for s in ["", "10", "ms", "-1s", "1d", "1.2.3s", ".s", "1 s", "1e3ms", "99999999999999999999h"] {
            assert!(matches!(go_duration("d", s), Err(QueryError::BadParameter { param: "d", .. })), "{s}");
        }
    }

    #[test]
    fn tags_come_from_the_json_map_and_the_repeated_form() {
        let t = tags(Some(r#"{"error":"true","http.status_code":500}"#), &["k8s.pod.name:p-1", "a:b:c"]).unwrap();
        assert_eq!(
            t,
            [("error", "true"), ("http.status_code", "500"), ("k8s.pod.name", "p-1"), ("a", "b:c")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        for (json, pairs) in [
            (Some("[1]"), &[][..]),
            (Some("{\"a\":{}}"), &[]),
            (Some("nope"), &[]),
            (None, &["no-colon"][..]),
            (Some(r#"{"":"x"}"#), &[]),
        ] {
            assert!(matches!(tags(json, pairs), Err(QueryError::BadParameter { .. })), "{json:?} {pairs:?}");
        }
    }

    #[test]
    fn times_are_checked() {
        assert_eq!(unix_micros("start", "1700000000000000").unwrap(), 1_700_000_000_000_000_000);
        assert!(unix_micros("start", "99999999999999999").is_err());
        assert!(unix_micros("start", "-5").is_err());
    }
}
