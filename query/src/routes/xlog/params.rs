//! Parameters of `/api/xlog` and `/api/transactions`: every one checked, unknown ones refused, and
//! a bad one answered with a 400 that names it.

use rewind_storage::{Metric, XLogFilter};

use crate::error::QueryError;
use crate::params::{bad, boolean, duration_ms, text, trace_id, unix_ms};

/// Which endpoint: they share filters, not limits or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Scatter,
    List,
}

impl Endpoint {
    fn limits(self) -> (usize, usize) {
        match self {
            // A 10-minute window of a busy system is about a million transactions.
            Endpoint::Scatter => (1_000_000, 5_000_000),
            Endpoint::List => (500, 10_000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Arrow,
}

pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Ranges over the scatter's other Y axes: SQL, API and CPU time.
const TIME_PARAMS: [&str; 6] = ["min_sql_ms", "max_sql_ms", "min_api_ms", "max_api_ms", "min_cpu_ms", "max_cpu_ms"];

/// The filters both endpoints take (besides `attr.KEY=VALUE`); the scatter also takes `format`.
pub const FILTERS: &[&str] = &[
    "from",
    "to",
    "service",
    "endpoint",
    "min_ms",
    "max_ms",
    "error",
    "client_ip",
    "user_id",
    "user_agent",
    "text",
    "trace_id",
    "min_sql_ms",
    "max_sql_ms",
    "min_api_ms",
    "max_api_ms",
    "min_cpu_ms",
    "max_cpu_ms",
    "limit",
];

/// Parses the query string pairs into a filter (and, for the scatter, an output format).
pub fn parse(endpoint: Endpoint, pairs: &[(String, String)]) -> Result<(XLogFilter, Format), QueryError> {
    let (default_limit, max_limit) = endpoint.limits();
    let mut f = XLogFilter { limit: default_limit, ..XLogFilter::default() };
    let (mut from, mut to, mut format) = (None, None, Format::Json);
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        if let Some(key) = k.strip_prefix("attr.") {
            if key.is_empty() {
                return Err(bad("attr", "attribute filters are attr.KEY=VALUE"));
            }
            if f.attributes.len() == 16 {
                return Err(bad("attr", "at most 16 attribute filters"));
            }
            if key.len() > 4096 || v.len() > 4096 {
                return Err(bad("attr", "keys and values are at most 4096 bytes"));
            }
            f.attributes.push((key.to_owned(), v.clone()));
            continue;
        }
        if seen.contains(&k.as_str()) {
            return Err(QueryError::BadParameter { param: "query", message: format!("`{k}` is given twice") });
        }
        seen.push(k);
        match k.as_str() {
            "from" => from = Some(unix_ms("from", v)?),
            "to" => to = Some(unix_ms("to", v)?),
            "service" => f.service = Some(text("service", v)?),
            "endpoint" => f.endpoint = Some(text("endpoint", v)?),
            "min_ms" => f.min_elapsed_ns = Some(duration_ms("min_ms", v)?),
            "max_ms" => f.max_elapsed_ns = Some(duration_ms("max_ms", v)?),
            "error" => f.error = Some(boolean("error", v)?),
            "client_ip" => f.client_ip = Some(text("client_ip", v)?),
            "user_id" => f.user_id = Some(text("user_id", v)?),
            "user_agent" => f.user_agent = Some(text("user_agent", v)?),
            "text" => f.text = Some(text("text", v)?),
            "trace_id" => f.trace_id = Some(trace_id(v)?),
            "min_sql_ms" | "max_sql_ms" | "min_api_ms" | "max_api_ms" | "min_cpu_ms" | "max_cpu_ms" => {
                let param: &'static str = TIME_PARAMS.iter().find(|p| *p == k).expect("listed");
                let ns = duration_ms(param, v)?;
                let metric = match &k[4..7] {
                    "sql" => Metric::Sql,
                    "api" => Metric::Api,
                    _ => Metric::Cpu,
                };
                let i = match f.times.iter().position(|(m, _, _)| *m == metric) {
                    Some(i) => i,
                    None => {
                        f.times.push((metric, 0, u64::MAX));
                        f.times.len() - 1
                    }
                };
                if k.starts_with("min") {
                    f.times[i].1 = ns;
                } else {
                    f.times[i].2 = ns;
                }
            }
            "limit" => {
                let n: usize = v.parse().map_err(|_| bad("limit", format!("{v:?} is not a whole number")))?;
                if !(1..=max_limit).contains(&n) {
                    return Err(bad("limit", format!("must be between 1 and {max_limit}")));
                }
                f.limit = n;
            }
            "format" if endpoint == Endpoint::Scatter => {
                format = match v.as_str() {
                    "json" => Format::Json,
                    "arrow" => Format::Arrow,
                    _ => return Err(bad("format", "is json or arrow")),
                }
            }
            other => {
                return Err(QueryError::BadParameter {
                    param: "query",
                    message: format!("unknown parameter `{other}` (filters are {}, and attr.KEY)", FILTERS.join(", ")),
                })
            }
        }
    }
    f.from_ns = from.ok_or_else(|| bad("from", "is required (Unix milliseconds)"))?;
    f.to_ns = to.ok_or_else(|| bad("to", "is required (Unix milliseconds)"))?;
    if f.to_ns <= f.from_ns {
        return Err(bad("to", "must be after `from`"));
    }
    if let (Some(lo), Some(hi)) = (f.min_elapsed_ns, f.max_elapsed_ns) {
        if hi < lo {
            return Err(bad("max_ms", "must not be below `min_ms`"));
        }
    }
    for (m, lo, hi) in &f.times {
        if hi < lo {
            let param = match m {
                Metric::Sql => "max_sql_ms",
                Metric::Api => "max_api_ms",
                Metric::Cpu => "max_cpu_ms",
            };
            return Err(bad(param, "must not be below its minimum"));
        }
    }
    Ok((f, format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::tests::q;

    #[test]
    fn good_parameters_become_a_filter() {
        let (f, fmt) = parse(
            Endpoint::Scatter,
            &q("from=1000&to=2000&service=cart&min_ms=1.5&max_ms=30&error=true&attr.k8s.pod.name=p1&format=arrow"),
        )
        .unwrap();
        assert_eq!((f.from_ns, f.to_ns), (1_000_000_000, 2_000_000_000));
        assert_eq!((f.min_elapsed_ns, f.max_elapsed_ns), (Some(1_500_000), Some(30_000_000)));
        assert_eq!(f.attributes, vec![("k8s.pod.name".to_string(), "p1".to_string())]);
        assert_eq!((f.error, f.limit, fmt), (Some(true), 1_000_000, Format::Arrow));
        let (f, _) = parse(Endpoint::List, &q("from=0&to=1")).unwrap();
        assert_eq!(f.limit, 500);
        // Fractional milliseconds, exactly, as the API answers them.
        let (f, _) = parse(Endpoint::List, &q("from=1796031270290.2222&to=1796031270290.5")).unwrap();
        assert_eq!((f.from_ns, f.to_ns), (1_796_031_270_290_222_200, 1_796_031_270_290_500_000));
        let (f, _) = parse(Endpoint::List, &q("from=0&to=1&min_sql_ms=2&max_sql_ms=5.5&max_cpu_ms=1")).unwrap();
        assert_eq!(f.times, vec![(Metric::Sql, 2_000_000, 5_500_000), (Metric::Cpu, 0, 1_000_000)]);
    }

    #[test]
    fn each_bad_parameter_is_named() {
        for (query, param) in [
            ("to=5", "from"),
            ("from=5", "to"),
            ("from=abc&to=5", "from"),
            ("from=5&to=5", "to"),
            ("from=1&to=5&min_ms=-1", "min_ms"),
            ("from=1&to=5&max_ms=NaN", "max_ms"),
            ("from=1&to=5&min_ms=9&max_ms=2", "max_ms"),
            ("from=1&to=5&min_sql_ms=x", "min_sql_ms"),
            ("from=1&to=5&min_api_ms=9&max_api_ms=2", "max_api_ms"),
            ("from=1&to=5&error=maybe", "error"),
            ("from=1&to=5&limit=0", "limit"),
            ("from=1&to=5&limit=99999999", "limit"),
            ("from=1&to=5&trace_id=xyz", "trace_id"),
            ("from=1&to=5&service=", "service"),
            ("from=1&to=5&attr.=x", "attr"),
            ("from=1&to=5&format=csv", "format"),
            ("from=1&to=5&colour=red", "query"),
            ("from=1&from=2&to=5", "query"),
            ("from=99999999999999999&to=999999999999999999", "from"),
            ("from=1.&to=5", "from"),
            ("from=.5&to=5", "from"),
            ("from=1.1234567&to=5", "from"),
            ("from=-1&to=5", "from"),
            ("from=1e3&to=5000", "from"),
            ("from=1&to=5.x", "to"),
        ] {
            match parse(Endpoint::Scatter, &q(query)) {
                Err(QueryError::BadParameter { param: p, message }) => assert_eq!(p, param, "{query}: {message}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        assert!(matches!(
            parse(Endpoint::List, &q("from=1&to=5&format=arrow")),
            Err(QueryError::BadParameter { param: "query", .. })
        ));
    }

    #[test]
    fn every_listed_filter_is_parsed() {
        for name in FILTERS.iter().chain(&["format"]) {
            let value = match *name {
                "from" | "to" => continue,
                "trace_id" => "0af7651916cd43dd8448eb211c80319c",
                "error" => "true",
                "format" => "json",
                "service" | "endpoint" | "client_ip" | "user_id" | "user_agent" | "text" => "x",
                _ => "5",
            };
            let query = format!("from=0&to=1000&{name}={value}");
            parse(Endpoint::Scatter, &q(&query)).unwrap_or_else(|e| panic!("{query}: {e}"));
        }
    }
}
