//! A past range played back frame by frame, from the statistics alone: for each second (or
//! step) every service's transactions per second, errors, average and percentiles, the
//! equalizer of transactions in flight at that moment, and every link's calls, so that a map can
//! be coloured frame by frame. The equalizer comes from the `active` counts the statistics keep
//! per second (see `stats::in_flight`), so a transaction that started before the range or ends
//! after it, or runs for a minute, counts in exactly the frames it was in flight.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::histogram::{rows_for_step, step_within};
use crate::codec::Reader;
use crate::error::StorageError;
use crate::stats::hist::Hist;
use crate::stats::{ActiveBounds, Cell, Key};
use crate::store::Store;

/// A replay has at most this many frames: an hour at one second, also when it does not start on
/// a second (it is read as whole seconds); longer ranges take a coarser step.
pub const MAX_FRAMES: u64 = 3601;
/// Replays of this many frames or more are read on two threads.
const PARALLEL_FRAMES: u64 = 600;

#[derive(Debug, Clone)]
pub struct ReplayQuery {
    /// Unix seconds, `[from, to)`.
    pub from_s: u64,
    pub to_s: u64,
    /// Only this service's transactions and the links into and out of it.
    pub service: Option<String>,
    /// Seconds per frame; at least what keeps the replay within `MAX_FRAMES`.
    pub step_s: Option<u64>,
}

/// Scouter's equalizer: transactions in flight at the frame's start, by how long they had been
/// running, in the store's age buckets (`<3s`, `3-8s`, `>=8s` by default). Averaged over the
/// frame's seconds when a frame is longer than one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Active {
    pub counts: [f64; 3],
    pub bounds: ActiveBounds,
}

impl Serialize for Active {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let [a, b] = self.bounds;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry(&format!("<{a}s"), &self.counts[0])?;
        m.serialize_entry(&format!("{a}-{b}s"), &self.counts[1])?;
        m.serialize_entry(&format!(">={b}s"), &self.counts[2])?;
        m.end()
    }
}

impl utoipa::PartialSchema for Active {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::figures::counts_by_name(
            utoipa::openapi::Type::Number,
            "Transactions in flight at the frame's start by how long they had been running, three \
             age ranges named by the store's bounds (`<3s`, `3-8s`, `>=8s` by default); averaged \
             over the frame's seconds.",
            &[],
        )
    }
}

impl utoipa::ToSchema for Active {}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct FrameFigures {
    pub tps: f64,
    pub count: u64,
    pub errors: u64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub active: Active,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct ServiceFrame {
    pub name: String,
    #[serde(flatten)]
    pub figures: FrameFigures,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct LinkFrame {
    pub source: String,
    pub target: String,
    pub count: u64,
    pub errors: u64,
    pub avg_ms: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Frame {
    /// The frame's first second, Unix milliseconds.
    pub time_ms: u64,
    /// Every service of the frame together.
    #[serde(flatten)]
    pub overall: FrameFigures,
    /// The services with transactions started or in flight in the frame, by name.
    pub services: Vec<ServiceFrame>,
    /// The links with calls in the frame, by source then target.
    pub links: Vec<LinkFrame>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Replay {
    /// The range answered, milliseconds: whole frames.
    pub from_ms: u64,
    pub to_ms: u64,
    pub step_ms: u64,
    /// Every frame of the range, quiet ones included, in time order.
    pub frames: Vec<Frame>,
}

/// What one row counts for, decoded once per distinct key: an index into the services' or the
/// links' names.
#[derive(Clone, Copy)]
enum Target {
    Service(u32),
    Link(u32),
    Skip,
}

/// A service's rows in one frame: the sums, and every histogram bucket of its cells (sorted
/// once, for the percentiles, instead of merged cell by cell).
#[derive(Default)]
struct Acc {
    count: u64,
    errors: u64,
    sum_ns: u64,
    active: [u64; 3],
    buckets: Vec<(u32, u64)>,
}

/// A link's figures in one frame: no histogram needed.
#[derive(Default, Clone, Copy)]
struct LinkSum {
    count: u64,
    errors: u64,
    sum_ns: u64,
}

#[derive(Default)]
struct FrameCells {
    services: FxHashMap<u32, Acc>,
    links: FxHashMap<u32, LinkSum>,
}

/// The step of a replay of `[from, to)` (seconds), as `step_for` chooses, within `MAX_FRAMES`.
pub fn replay_step(from: u64, to: u64, asked: Option<u64>, cover: crate::stats::read::Coverage) -> u64 {
    step_within(from, to, asked, cover, MAX_FRAMES)
}

fn ms(ns: f64) -> f64 {
    (ns / 1e4).round() / 100.0
}

/// The figures of some services' sums, and their histograms' buckets, in a frame of `step`
/// seconds.
fn figures(accs: &[&Acc], buckets: &[(u32, u64)], step: u64, bounds: ActiveBounds) -> FrameFigures {
    let (mut count, mut errors, mut sum_ns, mut active) = (0u64, 0u64, 0u64, [0u64; 3]);
    for a in accs {
        count += a.count;
        errors += a.errors;
        sum_ns = sum_ns.saturating_add(a.sum_ns);
        for (x, y) in active.iter_mut().zip(a.active) {
            *x += y;
        }
    }
    let q = Hist::quantiles_unsorted(buckets, &[0.5, 0.99]);
    let per_frame = |n: u64| (n as f64 / step as f64 * 100.0).round() / 100.0;
    FrameFigures {
        tps: per_frame(count),
        count,
        errors,
        avg_ms: if count == 0 { 0.0 } else { ms(sum_ns as f64 / count as f64) },
        p50_ms: q[0] as f64 / 1000.0,
        p99_ms: q[1] as f64 / 1000.0,
        active: Active { counts: active.map(per_frame), bounds },
    }
}

impl Store {
    pub fn replay(&self, q: &ReplayQuery) -> Result<Replay, StorageError> {
        let cover = self.stats_coverage();
        let step = replay_step(q.from_s, q.to_s, q.step_s, cover);
        // Whole frames, aligned to the step, so that frames of one replay and the next agree.
        let from = q.from_s - q.from_s % step;
        let to = q.to_s.div_ceil(step).saturating_mul(step).max(from + step);
        // Long replays in two halves on two threads: frames of different times share nothing.
        let frames_n = (to - from) / step;
        let frames = if frames_n >= PARALLEL_FRAMES {
            let mid = from + frames_n / 2 * step;
            let service = q.service.as_deref();
            let (a, b) = std::thread::scope(|sc| {
                let a = sc.spawn(|| self.replay_part(from, mid, step, service));
                let b = self.replay_part(mid, to, step, service);
                (a.join(), b)
            });
            let mut frames = a.unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            frames.extend(b?);
            frames
        } else {
            self.replay_part(from, to, step, q.service.as_deref())?
        };
        Ok(Replay { from_ms: from * 1000, to_ms: to * 1000, step_ms: step * 1000, frames })
    }

    /// The frames of `[from, to)`, both on the step's boundaries.
    fn replay_part(&self, from: u64, to: u64, step: u64, only: Option<&str>) -> Result<Vec<Frame>, StorageError> {
        let bounds = self.config.active_bounds_s;
        let service = only.map(str::to_owned);
        let wants = move |k: &str| match (&service, Key::decode(k)) {
            (_, Err(_)) => false,
            (None, Ok(_)) => true,
            (Some(s), Ok(Key::Node { service, .. })) => *service == **s,
            (Some(s), Ok(Key::Link { source, target, .. })) => *source == **s || *target == **s,
        };
        let frames_n = ((to - from) / step) as usize;
        let mut frames: Vec<FrameCells> = (0..frames_n).map(|_| FrameCells::default()).collect();
        let mut targets: FxHashMap<String, Target> = FxHashMap::default();
        let mut services: Vec<Arc<str>> = Vec::new();
        let mut links: Vec<(Arc<str>, Arc<str>)> = Vec::new();
        let mut visit = |t: u64, k: &str, cell: &[u8]| -> Result<(), StorageError> {
            if t < from || t >= to {
                return Ok(());
            }
            let target = match targets.get(k) {
                Some(t) => *t,
                None => {
                    let target = match Key::decode(k)? {
                        Key::Node { service: s, .. } if only.is_none_or(|w| w == &*s) => {
                            let i = services.iter().position(|x| *x == s).unwrap_or_else(|| {
                                services.push(s);
                                services.len() - 1
                            });
                            Target::Service(i as u32)
                        }
                        Key::Node { .. } => Target::Skip,
                        Key::Link { source, target, .. } => {
                            let pair = (source, target);
                            let i = links.iter().position(|x| *x == pair).unwrap_or_else(|| {
                                links.push(pair);
                                links.len() - 1
                            });
                            Target::Link(i as u32)
                        }
                    };
                    targets.insert(k.to_string(), target);
                    target
                }
            };
            let frame = &mut frames[((t - from) / step) as usize];
            let mut r = Reader::new(cell);
            match target {
                Target::Service(i) => {
                    let acc = frame.services.entry(i).or_default();
                    let s = Cell::summarize(&mut r, &mut acc.buckets)?;
                    acc.count += s.count;
                    acc.errors += s.errors;
                    acc.sum_ns = acc.sum_ns.saturating_add(s.sum_ns);
                    for (a, b) in acc.active.iter_mut().zip(s.active) {
                        *a += b;
                    }
                }
                Target::Link(i) => {
                    let s = Cell::sums(&mut r)?;
                    let l = frame.links.entry(i).or_default();
                    l.count += s.count;
                    l.errors += s.errors;
                    l.sum_ns = l.sum_ns.saturating_add(s.sum_ns);
                }
                Target::Skip => {}
            }
            Ok(())
        };
        // The range answered may round out to whole minutes if the replay window moved past
        // `from` since the step was chosen: rows outside the frames are skipped above.
        self.stats_visit(from, to, &wants, rows_for_step(step), &mut visit)?;
        let mut all = Vec::new();
        let frames = frames
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let mut by_name: Vec<(&Arc<str>, &Acc)> =
                    f.services.iter().map(|(i, a)| (&services[*i as usize], a)).collect();
                by_name.sort_by(|a, b| a.0.cmp(b.0));
                let services: Vec<ServiceFrame> = by_name
                    .iter()
                    .map(|(name, a)| ServiceFrame {
                        name: name.to_string(),
                        figures: figures(&[a], &a.buckets, step, bounds),
                    })
                    .collect();
                all.clear();
                for (_, a) in &by_name {
                    all.extend_from_slice(&a.buckets);
                }
                let accs: Vec<&Acc> = by_name.iter().map(|(_, a)| &**a).collect();
                let overall = figures(&accs, &all, step, bounds);
                let mut frame_links: Vec<LinkFrame> = f
                    .links
                    .iter()
                    .filter(|(_, l)| l.count > 0)
                    .map(|(i, l)| {
                        let (s, t) = &links[*i as usize];
                        LinkFrame {
                            source: s.to_string(),
                            target: t.to_string(),
                            count: l.count,
                            errors: l.errors,
                            avg_ms: ms(l.sum_ns as f64 / l.count as f64),
                        }
                    })
                    .collect();
                frame_links.sort_by(|a, b| (&a.source, &a.target).cmp(&(&b.source, &b.target)));
                Frame { time_ms: (from + i as u64 * step) * 1000, overall, services, links: frame_links }
            })
            .collect();
        Ok(frames)
    }
}
