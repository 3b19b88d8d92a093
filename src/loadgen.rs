//! `rewind loadgen`: the shop workload sent to a collector, live at a rate, as backfilled history,
//! pre-encoded to a file, or replayed from that file at full speed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use prost::Message;
use rewind_storage::now_ns;
use rewind_workload::replay::Replayable;
use rewind_workload::{span_count, Dependency, Incident, Protocol, SendError, Sender, Shop, ShopConfig};
use tokio::sync::{mpsc, watch};

use crate::config::parse_duration;

/// About this many spans make a shop trace; rates are given in spans per second.
pub const SPANS_PER_TRACE: f64 = 11.0;

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The collector: its gRPC (4317) or HTTP (4318) listener.
    #[arg(long, env = "REWIND_LOADGEN_ENDPOINT", default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    /// grpc or http (protobuf).
    #[arg(long, default_value = "grpc")]
    pub protocol: Protocol,
    /// Spans per second when sending live.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// How long to send live (or to replay); 0 for no live traffic.
    #[arg(long, default_value = "60s")]
    pub duration: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    #[arg(long, default_value_t = 20)]
    pub traces_per_request: usize,
    /// e.g. `dependency=mysql,start=-10m,duration=5m,slowdown=10,errors=0.3` (start relative to now).
    #[arg(long)]
    pub incident: Option<String>,
    /// First send this much history, ending now, at full speed (e.g. 1h).
    #[arg(long)]
    pub backfill: Option<String>,
    /// Pre-encode `--requests` requests to this file and exit.
    #[arg(long)]
    pub write: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Replay requests written with `--write`, round-robin at full speed, for `--duration`.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Bearer token, when the collector asks for one.
    #[arg(long, env = "REWIND_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn parse_incident(spec: &str, now: u64) -> anyhow::Result<Incident> {
    let (mut dep, mut start, mut duration, mut slowdown, mut errors) = (None, 0i128, 300_000_000_000u64, 10.0, 0.2);
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').with_context(|| format!("incident: {part:?} is not key=value"))?;
        match k.trim() {
            "dependency" => dep = Some(v.parse::<Dependency>().map_err(anyhow::Error::msg)?),
            "start" => {
                let (sign, d) = match v.strip_prefix('-') {
                    Some(d) => (-1, d),
                    None => (1, v.strip_prefix('+').unwrap_or(v)),
                };
                start = sign * parse_duration("incident start", d)?.as_nanos() as i128;
            }
            "duration" => duration = parse_duration("incident duration", v)?.as_nanos() as u64,
            "slowdown" => slowdown = v.parse().context("incident slowdown: a number like 10")?,
            "errors" => errors = v.parse().context("incident errors: a share like 0.3")?,
            other => bail!("incident: unknown key {other:?} (dependency, start, duration, slowdown, errors)"),
        }
    }
    let start_ns = (now as i128 + start).max(0) as u64;
    if !(0.0..=1.0).contains(&errors) || slowdown < 1.0 {
        bail!("incident: errors is a share in [0, 1] and slowdown at least 1");
    }
    Ok(Incident {
        start_ns,
        end_ns: start_ns + duration,
        dependency: dep.context("incident: dependency=... is required")?,
        slowdown,
        error_share: errors,
    })
}

#[derive(Default)]
pub struct Counters {
    pub spans: AtomicU64,
    pub requests: AtomicU64,
    pub retries: AtomicU64,
}

/// Sends whatever arrives on the channel over `connections` connections, retrying what the
/// collector asks to retry. Returns when the channel closes and everything is sent.
async fn pump(
    endpoint: &str,
    protocol: Protocol,
    token: Option<String>,
    connections: usize,
    rx: mpsc::Receiver<(Bytes, u64)>,
    counters: Arc<Counters>,
) -> anyhow::Result<()> {
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let mut sender =
            Sender::connect(endpoint, protocol, token.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let (rx, counters) = (rx.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some((body, spans)) = rx.lock().await.recv().await else { return Ok(()) };
                loop {
                    match sender.send(body.clone()).await {
                        Ok(r) => {
                            if let Some(p) = r.partial_success.filter(|p| p.rejected_spans > 0) {
                                tracing::warn!(rejected = p.rejected_spans, message = %p.error_message, "spans rejected");
                            }
                            counters.spans.fetch_add(spans, Ordering::Relaxed);
                            counters.requests.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(SendError::Retryable(_)) => {
                            counters.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(SendError::Failed(m)) => return Err(anyhow::anyhow!("export failed: {m}")),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The senders of one run: what goes into `tx` is sent, `queue` requests per connection buffered.
struct Pump {
    tx: mpsc::Sender<(Bytes, u64)>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    counters: Arc<Counters>,
}

impl Pump {
    fn start(args: &LoadgenArgs, queue: usize) -> Self {
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(args.connections.max(1) * queue);
        let (endpoint, token, c) = (args.endpoint.clone(), args.token.clone(), counters.clone());
        let (protocol, connections) = (args.protocol, args.connections);
        let handle = tokio::spawn(async move { pump(&endpoint, protocol, token, connections, rx, c).await });
        Self { tx, handle, counters }
    }

    /// Sends what is queued and returns the spans acknowledged.
    async fn finish(self) -> anyhow::Result<u64> {
        drop(self.tx);
        self.handle.await??;
        Ok(self.counters.spans.load(Ordering::Relaxed))
    }
}

/// History from `from_ns` to `to_ns` at `rate` spans/s, sent as fast as the collector takes it.
pub async fn backfill(args: &LoadgenArgs, shop: &mut Shop, from_ns: u64, to_ns: u64) -> anyhow::Result<u64> {
    let pump = Pump::start(args, 2);
    let interval = (1e9 * SPANS_PER_TRACE / args.rate.max(1) as f64) as u64;
    let mut t = from_ns;
    while t < to_ns {
        let n = (((to_ns - t) / interval.max(1)) as usize).clamp(1, args.traces_per_request);
        let req = shop.request(n, t, interval);
        t += n as u64 * interval;
        let spans = span_count(&req);
        if pump.tx.send((Bytes::from(req.encode_to_vec()), spans)).await.is_err() {
            break; // the pump failed; finish() reports why
        }
    }
    pump.finish().await
}

/// Live traffic at `rate` spans/s, timestamps now, until `duration` passes or `stop` turns true.
pub async fn live(
    args: &LoadgenArgs,
    shop: &mut Shop,
    duration: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<u64> {
    let pump = Pump::start(args, 4);
    let traces_per_sec = args.rate as f64 / SPANS_PER_TRACE;
    let started = Instant::now();
    let mut sent_traces = 0u64;
    let mut last_report = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < duration && !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let due = (started.elapsed().as_secs_f64() * traces_per_sec) as u64;
        while sent_traces < due {
            let n = ((due - sent_traces) as usize).min(args.traces_per_request);
            let interval = (1e9 / traces_per_sec) as u64;
            // Spans are exported when they end: start them a moment ago.
            let req = shop.request(n, now_ns() - 1_000_000_000, interval);
            sent_traces += n as u64;
            let spans = span_count(&req);
            if pump.tx.send((Bytes::from(req.encode_to_vec()), spans)).await.is_err() {
                break;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            let (spans, retries) =
                (pump.counters.spans.load(Ordering::Relaxed), pump.counters.retries.load(Ordering::Relaxed));
            tracing::info!(spans, retries, "live traffic");
            last_report = Instant::now();
        }
    }
    pump.finish().await
}

/// Requests written with `write_file`, sent round-robin at full speed for `duration`.
async fn replay(args: &LoadgenArgs, path: &PathBuf, duration: Duration) -> anyhow::Result<()> {
    let requests = read_file(path)?;
    if requests.is_empty() {
        bail!("{} holds no requests", path.display());
    }
    let pump = Pump::start(args, 2);
    let counters = pump.counters.clone();
    let started = Instant::now();
    // Every pass after the first sends the requests as new traces: the same bytes again would be
    // retries, acknowledged and not stored.
    'passes: for round in 0u64.. {
        for r in &requests {
            if started.elapsed() >= duration || pump.tx.send((r.round(round), r.spans)).await.is_err() {
                break 'passes;
            }
        }
    }
    let spans = pump.finish().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "replayed {spans} spans in {secs:.1} s: {:.0} spans/s over {} connections ({} retries)",
        spans as f64 / secs,
        args.connections,
        counters.retries.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Length-prefixed (u32 little-endian) encoded requests.
fn write_file(path: &PathBuf, shop: &mut Shop, requests: usize, traces_per_request: usize) -> anyhow::Result<u64> {
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    let interval = 1_000_000;
    let mut t = now_ns() - (requests * traces_per_request) as u64 * interval;
    let mut spans = 0;
    for _ in 0..requests {
        let req = shop.request(traces_per_request, t, interval);
        t += traces_per_request as u64 * interval;
        spans += span_count(&req);
        let b = req.encode_to_vec();
        f.write_all(&(b.len() as u32).to_le_bytes())?;
        f.write_all(&b)?;
    }
    f.flush()?;
    Ok(spans)
}

fn read_file(path: &PathBuf) -> anyhow::Result<Vec<Replayable>> {
    let mut data = Vec::new();
    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?.read_to_end(&mut data)?;
    let mut out = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest.get(..4).context("truncated length")?.try_into()?) as usize;
        let body = rest.get(4..4 + len).context("truncated request")?;
        rewind_agent_proto::ExportTraceServiceRequest::decode(body).context("not an export request")?;
        out.push(Replayable::from_encoded(Bytes::copy_from_slice(body)).context("not an export request")?);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let now = now_ns();
    let incident = args.incident.as_deref().map(|s| parse_incident(s, now)).transpose()?;
    let mut shop = Shop::new(ShopConfig { seed: args.seed, incident });
    let duration = parse_duration("duration", &args.duration)?;
    if let Some(path) = &args.write {
        let spans = write_file(path, &mut shop, args.requests, args.traces_per_request)?;
        println!("wrote {} requests ({spans} spans) to {}", args.requests, path.display());
        return Ok(());
    }
    if let Some(path) = &args.replay {
        return replay(&args, path, duration).await;
    }
    if let Some(b) = &args.backfill {
        let span = parse_duration("backfill", b)?.as_nanos() as u64;
        let started = Instant::now();
        let spans = backfill(&args, &mut shop, now - span, now).await?;
        println!("backfilled {spans} spans in {:.1} s", started.elapsed().as_secs_f64());
    }
    if !duration.is_zero() {
        let (_keep, stop) = watch::channel(false);
        let spans = live(&args, &mut shop, duration, stop).await?;
        println!("sent {spans} spans live over {:.0} s", duration.as_secs_f64());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_parse_relative_to_now() {
        let i = parse_incident("dependency=mysql,start=-10m,duration=5m,slowdown=8,errors=0.25", 1_000_000_000_000)
            .unwrap();
        assert_eq!(i.dependency, Dependency::Mysql);
        assert_eq!(i.start_ns, 1_000_000_000_000 - 600_000_000_000);
        assert_eq!(i.end_ns - i.start_ns, 300_000_000_000);
        assert_eq!((i.slowdown, i.error_share), (8.0, 0.25));
        assert!(parse_incident("dependency=oracle", 0).unwrap_err().to_string().contains("unknown dependency"));
        assert!(parse_incident("start=1m", 0).unwrap_err().to_string().contains("dependency"));
        assert!(parse_incident("dependency=redis,errors=2", 0).is_err());
    }
}
