//! Key layouts of the column families. All integers big-endian so keys sort by them.

use crate::model::TraceId;

pub const CF_META: &str = "meta";
pub const CF_WAL: &str = "wal";
pub const CF_CHUNKS: &str = "chunks";
pub const CF_TRACE_INDEX: &str = "tindex";
/// Every column family of format version 1.
pub const COLUMN_FAMILIES: [&str; 4] = [CF_META, CF_WAL, CF_CHUNKS, CF_TRACE_INDEX];

pub const META_FORMAT_VERSION: &[u8] = b"format_version";
pub const META_PARTITION_NS: &[u8] = b"partition_ns";
/// Partitions below this one were dropped (retention or disk budget) and may never come back.
pub const META_FLOOR_PARTITION: &[u8] = b"floor_partition";
/// The highest WAL sequence sealed. Records at or below it that are still in the log hold entry
/// spans whose XLog records were not final yet (see `Store::seal`).
pub const META_SEALED_SEQ: &[u8] = b"last_sealed_seq";
/// The retention horizon a previous run reached (`clock::Horizon`): a restart does not move it
/// backward, and a wall clock far ahead of it is followed gradually.
pub const META_HORIZON: &[u8] = b"retention_horizon";
/// Written by `Store::probe_write` to learn whether the store can write again.
pub const META_PROBE: &[u8] = b"write_probe";
/// Segment metas of the spans table ...
pub const META_SEGMENT_PREFIX: u8 = b's';
/// ... and of the XLog table.
pub const META_XSEGMENT_PREFIX: u8 = b'x';
pub const META_SERVICE_PREFIX: u8 = b'c';
/// Segment metas of the statistics tables: seconds, minutes, hours.
pub const META_STATS_SECONDS_PREFIX: u8 = b'1';
pub const META_STATS_MINUTES_PREFIX: u8 = b'2';
pub const META_STATS_HOURS_PREFIX: u8 = b'3';
/// Statistics are rolled up into minutes before this second, into hours before this one.
pub const META_ROLLED_MINUTES: &[u8] = b"rolled_minutes";
pub const META_ROLLED_HOURS: &[u8] = b"rolled_hours";
/// The traces the deriver held at the last seal: at recovery, write-ahead-log records at or
/// below the sealed sequence feed the deriver only for these (the others were emitted).
pub const META_HELD_TRACES: &[u8] = b"held_traces";
/// Of those, the traces whose transactions were sealed while their calls waited, each with the
/// last log record those came from: a recovery does not make them again. Absent in stores from
/// before it, which never let a held trace's transactions go.
pub const META_HELD_RELEASED: &[u8] = b"held_released";
/// One key per seal (prefix, then the seal's wall time and a sequence number, big-endian): the
/// fingerprints of the batches it sealed (`store::retries`).
pub const META_BATCHES_PREFIX: u8 = b'b';

/// The key of one seal's batch fingerprints.
pub fn batches(wall_ns: u64, seq: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = META_BATCHES_PREFIX;
    k[1..9].copy_from_slice(&wall_ns.to_be_bytes());
    k[9..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn wal(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn chunk(part: u64, seg: u64, col: u16, page: u32) -> [u8; 22] {
    let mut k = [0u8; 22];
    k[..8].copy_from_slice(&part.to_be_bytes());
    k[8..16].copy_from_slice(&seg.to_be_bytes());
    k[16..18].copy_from_slice(&col.to_be_bytes());
    k[18..].copy_from_slice(&page.to_be_bytes());
    k
}

/// (partition, segment, column) of a chunk key.
pub fn parse_chunk(key: &[u8]) -> Option<(u64, u64, u16)> {
    if key.len() != 22 {
        return None;
    }
    Some((
        u64::from_be_bytes(key[..8].try_into().ok()?),
        u64::from_be_bytes(key[8..16].try_into().ok()?),
        u16::from_be_bytes(key[16..18].try_into().ok()?),
    ))
}

/// First key of a partition's chunks; `chunk_partition_start(p + 1)` bounds it.
pub fn chunk_partition_start(part: u64) -> [u8; 8] {
    part.to_be_bytes()
}

/// A segment's meta: the table's prefix (`META_SEGMENT_PREFIX`, `META_XSEGMENT_PREFIX`),
/// partition, segment.
pub fn segment_meta(prefix: u8, part: u64, seg: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..9].copy_from_slice(&segment_meta_partition(prefix, part));
    k[9..].copy_from_slice(&seg.to_be_bytes());
    k
}

/// First key of a partition's segment metas in a table; `segment_meta_partition(prefix, p + 1)`
/// bounds them.
pub fn segment_meta_partition(prefix: u8, part: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&part.to_be_bytes());
    k
}

pub fn service(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(META_SERVICE_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn trace_index(trace: &TraceId, part: u64, seg: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&trace.0);
    k[16..24].copy_from_slice(&part.to_be_bytes());
    k[24..].copy_from_slice(&seg.to_be_bytes());
    k
}

/// (partition, segment) of a trace-index key.
pub fn parse_trace_index(key: &[u8]) -> Option<(u64, u64)> {
    if key.len() != 32 {
        return None;
    }
    Some((u64::from_be_bytes(key[16..24].try_into().ok()?), u64::from_be_bytes(key[24..32].try_into().ok()?)))
}
