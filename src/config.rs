//! Configuration, in layers: built-in defaults, then the TOML file (`--config`), then `REWIND_*`
//! environment variables, then flags. Validated once, at start-up, with messages that name the
//! setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

/// Flags of `rewind serve`; each also reads its `REWIND_*` environment variable.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment win over it).
    #[arg(long, env = "REWIND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the RocksDB store [default: ./rewind-data].
    #[arg(long, env = "REWIND_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address [default: 0.0.0.0:4317].
    #[arg(long, env = "REWIND_GRPC_LISTEN")]
    pub grpc_listen: Option<String>,
    /// OTLP/HTTP listen address [default: 0.0.0.0:4318].
    #[arg(long, env = "REWIND_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Query API and UI listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "REWIND_QUERY_LISTEN")]
    pub query_listen: Option<String>,
    /// Keep data this long, e.g. 7d, 36h [default: 7d].
    #[arg(long, env = "REWIND_RETENTION")]
    pub retention: Option<String>,
    /// Keep the server map's statistics at one-second resolution this long (older seconds are
    /// kept as minutes and hours), at most the retention [default: 7d, or the retention if
    /// shorter].
    #[arg(long, env = "REWIND_REPLAY_WINDOW")]
    pub replay_window: Option<String>,
    /// How long a call to another service waits for that service's span before it counts as a
    /// call to an uninstrumented peer [default: 10s].
    #[arg(long, env = "REWIND_LINK_WAIT")]
    pub link_wait: Option<String>,
    /// The replay's equalizer: transactions in flight for less than the first, between the two,
    /// or for the second or more; whole seconds, applied as transactions are stored
    /// [default: 3s,8s, Scouter's].
    #[arg(long, env = "REWIND_ACTIVE_THRESHOLDS")]
    pub active_thresholds: Option<String>,
    /// Drop the oldest partitions beyond this many bytes on disk, e.g. 50GiB [default: none].
    #[arg(long, env = "REWIND_MAX_DISK_BYTES")]
    pub max_disk_bytes: Option<String>,
    /// Refuse exports ("retry later") while the data directory's filesystem has less free space
    /// than this, so the store never runs out in the middle of a write (RocksDB does not survive
    /// that); seals go on down to half of it, and the store does not open with less than a
    /// quarter; 0 turns it off [default: 1GiB].
    #[arg(long, env = "REWIND_MIN_FREE_DISK")]
    pub min_free_disk: Option<String>,
    /// Largest export request accepted, e.g. 16MiB [default: 16MiB].
    #[arg(long, env = "REWIND_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<String>,
    /// Memory that exports in flight may take once decoded (priced before decoding), before the
    /// collector answers "retry later"; a request that alone would take more is refused [default: 256MiB].
    #[arg(long, env = "REWIND_QUEUE_BYTES")]
    pub queue_bytes: Option<String>,
    /// Require `authorization: Bearer <token>` on exports.
    #[arg(long, env = "REWIND_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
    /// Require `authorization: Bearer <token>` on /api/*.
    #[arg(long, env = "REWIND_QUERY_TOKEN", hide_env_values = true)]
    pub query_token: Option<String>,
    /// fsync each acknowledged write (true) or rely on the OS page cache, which survives a process
    /// crash but not a power cut (false) [default: true].
    #[arg(long, env = "REWIND_SYNC")]
    pub sync: Option<bool>,
    /// Seal unsealed spans into column chunks at least this often [default: 10s].
    #[arg(long, env = "REWIND_SEAL_INTERVAL")]
    pub seal_interval: Option<String>,
    /// ... or once this many are waiting [default: 100000].
    #[arg(long, env = "REWIND_SEAL_ROWS")]
    pub seal_rows: Option<usize>,
    /// Memory unsealed spans may hold at most (their allocations, estimated); past it exports get
    /// "retry later" until sealing catches up [default: 256MiB].
    #[arg(long, env = "REWIND_MAX_UNSEALED_BYTES")]
    pub max_unsealed_bytes: Option<String>,
    /// Derive an XLog record from every OTLP entry span (SERVER, CONSUMER or root) [default: true].
    #[arg(long, env = "REWIND_XLOG_FROM_SPANS")]
    pub xlog_from_spans: Option<bool>,
    /// How long an entry span waits for children exported after it before its XLog record is
    /// final [default: 2s].
    #[arg(long, env = "REWIND_XLOG_GRACE")]
    pub xlog_grace: Option<String>,
    /// A SQL query running longer is stopped and answered 408 [default: 30s].
    #[arg(long, env = "REWIND_SQL_TIMEOUT")]
    pub sql_timeout: Option<String>,
    /// Memory one SQL query may use for sorts, joins and aggregations; past it, 413 [default: 512MiB].
    #[arg(long, env = "REWIND_SQL_MEMORY")]
    pub sql_memory: Option<String>,
    /// Rows a SQL query may return; past it, 413 [default: 100000].
    #[arg(long, env = "REWIND_SQL_MAX_ROWS")]
    pub sql_max_rows: Option<usize>,
    /// SQL queries at once; more are answered 503 with Retry-After [default: 4].
    #[arg(long, env = "REWIND_SQL_CONCURRENCY")]
    pub sql_concurrency: Option<usize>,
    /// Connections open at once on each listener; more wait, unaccepted [default: 1024].
    #[arg(long, env = "REWIND_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// An HTTP/1 request's headers must arrive within this [default: 10s].
    #[arg(long, env = "REWIND_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// An export (receiving its body, decoding, the durable write) taking longer is answered
    /// "retry later"; its budget stays held until the work it started ends [default: 60s].
    #[arg(long, env = "REWIND_EXPORT_TIMEOUT")]
    pub export_timeout: Option<String>,
    /// A query API request taking longer is stopped (its scans too) and answered 503 [default: 30s].
    #[arg(long, env = "REWIND_QUERY_TIMEOUT")]
    pub query_timeout: Option<String>,
    /// Query API requests that scan the store (all but health, metrics and the UI) running at
    /// once; more are answered 503 with Retry-After [default: 8].
    #[arg(long, env = "REWIND_QUERY_CONCURRENCY")]
    pub query_concurrency: Option<usize>,
    /// Memory the answers of store reads being built may take together, each reserving its bound
    /// before it starts (a scatter 200 bytes a point asked for); past it, 503 [default: 1GiB].
    #[arg(long, env = "REWIND_QUERY_MEMORY")]
    pub query_memory: Option<String>,
    /// Path prefix of the Jaeger query API on the query port (for Grafana's Jaeger data source
    /// and the Jaeger UI); `none` turns it off [default: /jaeger].
    #[arg(long, env = "REWIND_JAEGER_PREFIX")]
    pub jaeger_prefix: Option<String>,
    /// Services and the peers they call kept in the catalog (peers at most half); more names
    /// are counted in rewind_storage_catalog_overflow_total, not kept [default: 10000].
    #[arg(long, env = "REWIND_MAX_SERVICES")]
    pub max_services: Option<usize>,
    /// Distinct span and resource attribute keys within the retention; attributes with a new key
    /// past it are dropped (counted in the span's dropped attributes and in
    /// rewind_storage_attribute_keys_refused_total) [default: 20000].
    #[arg(long, env = "REWIND_MAX_ATTRIBUTE_KEYS")]
    pub max_attribute_keys: Option<usize>,
    /// Spans the XLog deriver holds while traces complete; past it the largest traces are
    /// finalized early (rewind_storage_xlog_evicted_records_total) [default: 2000000].
    #[arg(long, env = "REWIND_XLOG_MAX_SPANS")]
    pub xlog_max_spans: Option<usize>,
    /// Spans of one trace the deriver holds; a trace reaching it is finalized at once and what
    /// follows starts anew (rewind_storage_xlog_trace_cuts_total) [default: 100000].
    #[arg(long, env = "REWIND_XLOG_MAX_TRACE_SPANS")]
    pub xlog_max_trace_spans: Option<usize>,
    /// Memory the XLog deriver's waiting transactions keep alive (their attributes, names and
    /// resources); past it the traces holding the most are finalized early
    /// (rewind_storage_xlog_evicted_records_total) [default: 256MiB].
    #[arg(long, env = "REWIND_XLOG_MAX_BYTES")]
    pub xlog_max_bytes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    grpc_listen: Option<String>,
    http_listen: Option<String>,
    query_listen: Option<String>,
    retention: Option<String>,
    replay_window: Option<String>,
    link_wait: Option<String>,
    active_thresholds: Option<String>,
    max_disk_bytes: Option<String>,
    min_free_disk: Option<String>,
    max_message_bytes: Option<String>,
    queue_bytes: Option<String>,
    ingest_token: Option<String>,
    query_token: Option<String>,
    sync: Option<bool>,
    seal_interval: Option<String>,
    seal_rows: Option<usize>,
    max_unsealed_bytes: Option<String>,
    xlog_from_spans: Option<bool>,
    xlog_grace: Option<String>,
    sql_timeout: Option<String>,
    sql_memory: Option<String>,
    sql_max_rows: Option<usize>,
    sql_concurrency: Option<usize>,
    max_connections: Option<usize>,
    header_timeout: Option<String>,
    export_timeout: Option<String>,
    query_timeout: Option<String>,
    query_concurrency: Option<usize>,
    query_memory: Option<String>,
    jaeger_prefix: Option<String>,
    max_services: Option<usize>,
    max_attribute_keys: Option<usize>,
    xlog_max_spans: Option<usize>,
    xlog_max_trace_spans: Option<usize>,
    xlog_max_bytes: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub query_listen: SocketAddr,
    pub retention: Duration,
    pub replay_window: Duration,
    pub link_wait: Duration,
    /// Seconds.
    pub active_thresholds: [u64; 2],
    pub max_disk_bytes: Option<u64>,
    pub min_free_disk: u64,
    pub max_message_bytes: usize,
    pub queue_bytes: usize,
    pub ingest_token: Option<String>,
    pub query_token: Option<String>,
    pub sync: bool,
    pub seal_interval: Duration,
    pub seal_rows: usize,
    pub max_unsealed_bytes: usize,
    pub xlog_from_spans: bool,
    pub xlog_grace: Duration,
    pub sql_timeout: Duration,
    pub sql_memory: usize,
    pub sql_max_rows: usize,
    pub sql_concurrency: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub export_timeout: Duration,
    pub query_timeout: Duration,
    pub query_concurrency: usize,
    pub query_memory: usize,
    /// `None`: no Jaeger API.
    pub jaeger_prefix: Option<String>,
    pub max_services: usize,
    pub max_attribute_keys: usize,
    pub xlog_max_spans: usize,
    pub xlog_max_trace_spans: usize,
    pub xlog_max_bytes: usize,
}

impl Config {
    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("in config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        macro_rules! pick {
            ($name:ident, $default:expr) => {
                args.$name.or(file.$name).unwrap_or_else(|| $default.into())
            };
        }
        let addr = |name: &str, v: String| -> anyhow::Result<SocketAddr> {
            v.parse().with_context(|| format!("{name}: {v:?} is not an address like 0.0.0.0:4317"))
        };
        let max_disk_bytes =
            args.max_disk_bytes.or(file.max_disk_bytes).map(|v| parse_bytes("max-disk-bytes", &v)).transpose()?;
        let retention = parse_duration("retention", &pick!(retention, "7d"))?;
        let replay_window = match args.replay_window.or(file.replay_window) {
            Some(v) => parse_duration("replay-window", &v)?,
            None => retention.min(Duration::from_secs(7 * 86400)),
        };
        let config = Config {
            data_dir: pick!(data_dir, PathBuf::from("./rewind-data")),
            grpc_listen: addr("grpc-listen", pick!(grpc_listen, "0.0.0.0:4317"))?,
            http_listen: addr("http-listen", pick!(http_listen, "0.0.0.0:4318"))?,
            query_listen: addr("query-listen", pick!(query_listen, "0.0.0.0:8080"))?,
            retention,
            replay_window,
            link_wait: parse_duration("link-wait", &pick!(link_wait, "10s"))?,
            active_thresholds: parse_thresholds(&pick!(active_thresholds, "3s,8s"))?,
            max_disk_bytes,
            min_free_disk: parse_bytes("min-free-disk", &pick!(min_free_disk, "1GiB"))?,
            max_message_bytes: parse_bytes("max-message-bytes", &pick!(max_message_bytes, "16MiB"))? as usize,
            queue_bytes: parse_bytes("queue-bytes", &pick!(queue_bytes, "256MiB"))? as usize,
            ingest_token: args.ingest_token.or(file.ingest_token).filter(|t| !t.is_empty()),
            query_token: args.query_token.or(file.query_token).filter(|t| !t.is_empty()),
            sync: args.sync.or(file.sync).unwrap_or(true),
            seal_interval: parse_duration("seal-interval", &pick!(seal_interval, "10s"))?,
            seal_rows: args.seal_rows.or(file.seal_rows).unwrap_or(100_000),
            max_unsealed_bytes: parse_bytes("max-unsealed-bytes", &pick!(max_unsealed_bytes, "256MiB"))? as usize,
            xlog_from_spans: args.xlog_from_spans.or(file.xlog_from_spans).unwrap_or(true),
            xlog_grace: parse_duration("xlog-grace", &pick!(xlog_grace, "2s"))?,
            sql_timeout: parse_duration("sql-timeout", &pick!(sql_timeout, "30s"))?,
            sql_memory: parse_bytes("sql-memory", &pick!(sql_memory, "512MiB"))? as usize,
            sql_max_rows: args.sql_max_rows.or(file.sql_max_rows).unwrap_or(100_000),
            sql_concurrency: args.sql_concurrency.or(file.sql_concurrency).unwrap_or(4),
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(1024),
            header_timeout: parse_duration("header-timeout", &pick!(header_timeout, "10s"))?,
            export_timeout: parse_duration("export-timeout", &pick!(export_timeout, "60s"))?,
            query_timeout: parse_duration("query-timeout", &pick!(query_timeout, "30s"))?,
            query_concurrency: args.query_concurrency.or(file.query_concurrency).unwrap_or(8),
            query_memory: parse_bytes("query-memory", &pick!(query_memory, "1GiB"))? as usize,
            jaeger_prefix: Some(pick!(jaeger_prefix, "/jaeger")).filter(|p| p != "none"),
            max_services: args.max_services.or(file.max_services).unwrap_or(10_000),
            max_attribute_keys: args
                .max_attribute_keys
                .or(file.max_attribute_keys)
                .unwrap_or(rewind_storage::attr_keys::MAX_ATTRIBUTE_KEYS),
            xlog_max_spans: args.xlog_max_spans.or(file.xlog_max_spans).unwrap_or(2_000_000),
            xlog_max_trace_spans: args.xlog_max_trace_spans.or(file.xlog_max_trace_spans).unwrap_or(100_000),
            xlog_max_bytes: parse_bytes("xlog-max-bytes", &pick!(xlog_max_bytes, "256MiB"))? as usize,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(p) = &self.jaeger_prefix {
            let segments_ok = p
                .split('/')
                .skip(1)
                .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            if !p.starts_with('/') || !segments_ok || p == "/api" || p.starts_with("/api/") {
                bail!("jaeger-prefix: a path such as /jaeger (letters, digits, - _ . between slashes, no trailing slash, not under /api), or none");
            }
        }
        if self.retention < Duration::from_secs(3600) {
            bail!("retention: must be at least 1h (data is dropped by whole one-hour partitions)");
        }
        if self.replay_window < Duration::from_secs(3600) || self.replay_window > self.retention {
            bail!("replay-window: must be between 1h and the retention ({:?})", self.retention);
        }
        if !(self.active_thresholds[0] >= 1
            && self.active_thresholds[0] < self.active_thresholds[1]
            && self.active_thresholds[1] <= 3600)
        {
            bail!("active-thresholds: two whole seconds, the first at least 1s, the second above it and at most 1h");
        }
        if self.link_wait > Duration::from_secs(600) {
            bail!("link-wait: at most 10m (traces and their write-ahead-log records wait this long)");
        }
        if self.max_message_bytes < 1024 || self.max_message_bytes > 1 << 30 {
            bail!("max-message-bytes: must be between 1KiB and 1GiB");
        }
        // A request decodes to at least twice its wire size, and a large one may take three
        // quarters of the budget: below this, the largest request could never be admitted.
        if self.queue_bytes < 3 * self.max_message_bytes {
            bail!("queue-bytes: must be at least three times max-message-bytes, or the largest request could never be admitted");
        }
        if self.queue_bytes > u32::MAX as usize {
            bail!("queue-bytes: at most 4GiB");
        }
        if !(1..=10_000_000).contains(&self.seal_rows) {
            bail!("seal-rows: must be between 1 and 10000000");
        }
        if self.max_unsealed_bytes < 1 << 20 {
            bail!("max-unsealed-bytes: at least 1MiB");
        }
        if self.seal_interval.is_zero() || self.seal_interval > Duration::from_secs(3600) {
            bail!("seal-interval: must be between 1ms and 1h");
        }
        if self.xlog_grace > Duration::from_secs(600) {
            bail!("xlog-grace: at most 10m (entry spans and their write-ahead-log records wait this long)");
        }
        if self.sql_timeout < Duration::from_millis(100) || self.sql_timeout > Duration::from_secs(3600) {
            bail!("sql-timeout: must be between 100ms and 1h");
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            bail!("max-connections: must be between 1 and 1000000");
        }
        for (name, d) in [("header-timeout", self.header_timeout), ("export-timeout", self.export_timeout)] {
            if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
                bail!("{name}: must be between 100ms and 1h");
            }
        }
        if self.query_timeout < Duration::from_millis(100) || self.query_timeout > Duration::from_secs(3600) {
            bail!("query-timeout: must be between 100ms and 1h");
        }
        if !(1..=1024).contains(&self.query_concurrency) {
            bail!("query-concurrency: must be between 1 and 1024");
        }
        if !(1_000..=100_000_000).contains(&self.xlog_max_spans) {
            bail!("xlog-max-spans: must be between 1000 and 100000000");
        }
        if self.xlog_max_trace_spans < 100 || self.xlog_max_trace_spans > self.xlog_max_spans {
            bail!("xlog-max-trace-spans: must be at least 100 and at most xlog-max-spans");
        }
        if self.xlog_max_bytes < 16 << 20 {
            bail!("xlog-max-bytes: must be at least 16MiB");
        }
        if !(10..=1_000_000).contains(&self.max_services) {
            bail!("max-services: must be between 10 and 1000000");
        }
        if !(100..=1_000_000).contains(&self.max_attribute_keys) {
            bail!("max-attribute-keys: must be between 100 and 1000000");
        }
        if self.query_memory < 64 << 20 || self.query_memory > u32::MAX as usize {
            bail!("query-memory: between 64MiB and 4GiB");
        }
        if self.sql_memory < 16 << 20 {
            bail!("sql-memory: at least 16MiB");
        }
        if !(1..=10_000_000).contains(&self.sql_max_rows) {
            bail!("sql-max-rows: must be between 1 and 10000000");
        }
        if !(1..=64).contains(&self.sql_concurrency) {
            bail!("sql-concurrency: must be between 1 and 64");
        }
        let addrs = [self.grpc_listen, self.http_listen, self.query_listen];
        for (i, a) in addrs.iter().enumerate() {
            if a.port() != 0 && addrs[..i].contains(a) {
                bail!("listen addresses must differ: {a} is used twice");
            }
        }
        Ok(())
    }
}

/// `3s,8s`: two durations of whole seconds.
fn parse_thresholds(v: &str) -> anyhow::Result<[u64; 2]> {
    let name = "active-thresholds";
    let parts: Vec<&str> = v.split(',').collect();
    let [a, b] = parts[..] else { bail!("{name}: {v:?} is not two durations like 3s,8s") };
    let secs = |d: &str| -> anyhow::Result<u64> {
        let d = parse_duration(name, d)?;
        if d.subsec_nanos() != 0 {
            bail!("{name}: {v:?}: whole seconds only");
        }
        Ok(d.as_secs())
    };
    Ok([secs(a)?, secs(b)?])
}

/// `500ms`, `10s`, `30m`, `36h`, `7d`; a bare number is seconds.
pub fn parse_duration(name: &str, v: &str) -> anyhow::Result<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().with_context(|| format!("{name}: {v:?} is not a duration like 7d, 12h, 30m, 10s"))?;
    let secs = |m: u64| Duration::from_secs(n.saturating_mul(m));
    Ok(match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        other => bail!("{name}: unknown unit {other:?} in {v:?}; use ms, s, m, h or d"),
    })
}

/// `1024`, `64KiB`, `16MiB`, `50GiB`, `1GB` (decimal units too).
pub fn parse_bytes(name: &str, v: &str) -> anyhow::Result<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().with_context(|| format!("{name}: {v:?} is not a size like 16MiB or 50GiB"))?;
    let m: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => bail!("{name}: unknown unit {other:?} in {v:?}; use KiB, MiB, GiB or TiB"),
    };
    n.checked_mul(m).with_context(|| format!("{name}: {v:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse() {
        assert_eq!(parse_duration("x", "7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_duration("x", "250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("x", "90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("x", "7w").unwrap_err().to_string().contains("unknown unit"));
        assert_eq!(parse_bytes("x", "16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("x", "2GB").unwrap(), 2_000_000_000);
        assert!(parse_bytes("x", "lots").is_err());
    }

    #[test]
    fn layers_apply_in_order_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rewind.toml");
        std::fs::write(&file, "retention = \"2d\"\nquery_listen = \"127.0.0.1:9000\"\n").unwrap();
        let c =
            Config::load(ServeArgs { config: Some(file.clone()), retention: Some("3d".into()), ..Default::default() })
                .unwrap();
        assert_eq!(c.retention, Duration::from_secs(3 * 86400), "flag beats file");
        assert_eq!(c.query_listen.port(), 9000, "file beats default");
        assert_eq!(c.grpc_listen.port(), 4317, "default");

        std::fs::write(&file, "retension = \"2d\"\n").unwrap();
        let e = Config::load(ServeArgs { config: Some(file.clone()), ..Default::default() }).unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `retension`"), "{e:#}");

        let e = Config::load(ServeArgs { queue_bytes: Some("1MiB".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("queue-bytes"), "{e}");
        let e = Config::load(ServeArgs { grpc_listen: Some("nowhere".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("grpc-listen"), "{e}");

        let held = |v: &str| Config::load(ServeArgs { xlog_max_bytes: Some(v.into()), ..Default::default() });
        assert_eq!(Config::load(ServeArgs::default()).unwrap().xlog_max_bytes, 256 << 20);
        assert_eq!(held("1GiB").unwrap().xlog_max_bytes, 1 << 30);
        for bad in ["8MiB", "lots", ""] {
            let e = held(bad).unwrap_err();
            assert!(e.to_string().contains("xlog-max-bytes"), "{bad}: {e}");
        }

        let thresholds = |v: &str| Config::load(ServeArgs { active_thresholds: Some(v.into()), ..Default::default() });
        assert_eq!(thresholds("2s,1m").unwrap().active_thresholds, [2, 60]);
        for bad in ["8s,3s", "0s,3s", "3s", "3s,8s,20s", "1500ms,8s", "3s,2h", "x,y"] {
            let e = thresholds(bad).unwrap_err();
            assert!(e.to_string().contains("active-thresholds"), "{bad}: {e}");
        }

        let prefix = |v: &str| Config::load(ServeArgs { jaeger_prefix: Some(v.into()), ..Default::default() });
        assert_eq!(Config::load(ServeArgs::default()).unwrap().jaeger_prefix.as_deref(), Some("/jaeger"));
        assert_eq!(prefix("/tools/jaeger-1").unwrap().jaeger_prefix.as_deref(), Some("/tools/jaeger-1"));
        assert_eq!(prefix("none").unwrap().jaeger_prefix, None);
        for bad in ["", "/", "jaeger", "/jaeger/", "/api", "/api/jaeger", "//x", "/a b", "/j?x"] {
            let e = prefix(bad).unwrap_err();
            assert!(e.to_string().contains("jaeger-prefix"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_replay_window_is_never_longer_than_the_retention() {
        let c = Config::load(ServeArgs::default()).unwrap();
        assert_eq!((c.replay_window, c.link_wait), (Duration::from_secs(7 * 86400), Duration::from_secs(10)));
        assert_eq!(c.active_thresholds, [3, 8]);
        // A shorter retention shortens the default ...
        let c = Config::load(ServeArgs { retention: Some("2d".into()), ..Default::default() }).unwrap();
        assert_eq!(c.replay_window, Duration::from_secs(2 * 86400));
        // ... and refuses a longer window asked for.
        let args = ServeArgs { retention: Some("2d".into()), replay_window: Some("3d".into()), ..Default::default() };
        let e = Config::load(args).unwrap_err();
        assert!(e.to_string().contains("replay-window"), "{e}");
        let c = Config::load(ServeArgs {
            retention: Some("30d".into()),
            replay_window: Some("1d".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.replay_window, Duration::from_secs(86400));
    }
}
