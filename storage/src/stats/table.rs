//! The statistics tables: rows of (time, key, cell), sorted by time then key, at three
//! resolutions. Seconds are written by seals; minutes and hours by the roll-up, which merges
//! the finer rows of complete minutes and hours (and seals write minute and hour rows directly for
//! the rare late data whose minute or hour was already rolled up).

use serde::{Deserialize, Serialize};

use super::Cell;
use crate::codec::{column as col, Reader};
use crate::error::StorageError;
use crate::keys;
use crate::model::Resource;
use crate::table::attrs::AttrColumns;
use crate::table::build::{self, Chunk, SegmentWriter};
use crate::table::page::Page;
use crate::table::{Fetch, SegmentMeta, Table, TableDef};

pub mod cols {
    /// Unix seconds: the second, or the first second of the minute or hour.
    pub const TIME: u16 = 0;
    /// `Key::encode`.
    pub const KEY: u16 = 1;
    /// `Cell::encode`.
    pub const CELL: u16 = 2;
    /// The layer's resource columns: statistics have none (one empty resource).
    pub const RESOURCE: u16 = 3;
    pub const RESOURCE_TABLE: u16 = 4;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    Second,
    Minute,
    Hour,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Second, Resolution::Minute, Resolution::Hour];

    pub fn seconds(self) -> u64 {
        match self {
            Resolution::Second => 1,
            Resolution::Minute => 60,
            Resolution::Hour => 3600,
        }
    }

    /// The start of the bucket of this resolution holding second `t`.
    pub fn floor(self, t: u64) -> u64 {
        t - t % self.seconds()
    }
}

macro_rules! stats_table {
    ($table:ident, $meta:ident, $name:literal, $prefix:expr, $res:expr) => {
        pub static $table: TableDef = TableDef {
            name: $name,
            meta_prefix: $prefix,
            resource_column: cols::RESOURCE,
            resource_table_column: cols::RESOURCE_TABLE,
        };

        /// A segment's meta.
        #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
        pub struct $meta(pub StatsMeta);

        impl SegmentMeta for $meta {
            const TABLE: &'static TableDef = &$table;

            fn partition(&self) -> u64 {
                self.0.partition
            }

            fn id(&self) -> u64 {
                self.0.id
            }

            fn rows(&self) -> u32 {
                self.0.rows
            }

            fn bytes(&self) -> u64 {
                self.0.bytes
            }

            fn attr_keys(&self) -> &[crate::attr_keys::Key] {
                &[]
            }

            fn resources(&self) -> u32 {
                1
            }

            /// In seconds, like the rows.
            fn time_range(&self) -> (u64, u64) {
                (self.0.min_time, self.0.max_time)
            }

            fn page_time_range(&self, page: u32) -> Option<(u64, u64)> {
                self.0.page_times.get(page as usize).copied()
            }
        }

        impl From<StatsMeta> for $meta {
            fn from(m: StatsMeta) -> Self {
                Self(m)
            }
        }

        impl AsRef<StatsMeta> for $meta {
            fn as_ref(&self) -> &StatsMeta {
                &self.0
            }
        }

        impl $meta {
            pub const RESOLUTION: Resolution = $res;
        }
    };
}

stats_table!(SECONDS, SecondsMeta, "stats_1s", keys::META_STATS_SECONDS_PREFIX, Resolution::Second);
stats_table!(MINUTES, MinutesMeta, "stats_1m", keys::META_STATS_MINUTES_PREFIX, Resolution::Minute);
stats_table!(HOURS, HoursMeta, "stats_1h", keys::META_STATS_HOURS_PREFIX, Resolution::Hour);

/// What the three tables' metas hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatsMeta {
    pub partition: u64,
    pub id: u64,
    pub rows: u32,
    /// Unix seconds, first and last row.
    pub min_time: u64,
    pub max_time: u64,
    pub page_times: Vec<(u64, u64)>,
    pub bytes: u64,
}

/// One row: (time, encoded key, cell).
pub type Row = (u64, String, Cell);

pub struct BuiltStats {
    pub meta: StatsMeta,
    pub chunks: Vec<Chunk>,
}

/// One segment of rows sorted by (time, key).
pub fn build(def: &'static TableDef, partition: u64, id: u64, rows: &[Row]) -> BuiltStats {
    let empty = std::sync::Arc::new(Resource::default());
    let attrs = AttrColumns::new(rows.iter().map(|_| &[][..]));
    let mut w = SegmentWriter::new(def, attrs, rows.iter().map(|_| &empty));
    let mut page_times = Vec::new();
    for (page, start, len) in build::pages(rows.len()) {
        let page_rows = &rows[start..start + len];
        page_times.push((page_rows[0].0, page_rows[len - 1].0));
        w.put(cols::TIME, page, &col::encode_delta(&page_rows.iter().map(|r| r.0).collect::<Vec<_>>()));
        w.put(cols::KEY, page, &col::encode_dict(&page_rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>()));
        let cells: Vec<Vec<u8>> = page_rows
            .iter()
            .map(|r| {
                let mut b = Vec::new();
                r.2.encode(&mut b);
                b
            })
            .collect();
        w.put(cols::CELL, page, &col::encode_blobs(&cells));
        w.put_shared(page, start, len);
    }
    let written = w.finish();
    let meta = StatsMeta {
        partition,
        id,
        rows: rows.len() as u32,
        min_time: rows.first().map_or(0, |r| r.0),
        max_time: rows.last().map_or(0, |r| r.0),
        page_times,
        bytes: written.bytes,
    };
    BuiltStats { meta, chunks: written.chunks }
}

/// The rows of a segment with time in `[from, to)` and a key the predicate accepts.
pub fn read<M: SegmentMeta + AsRef<StatsMeta>>(
    meta: &M,
    from: u64,
    to: u64,
    wants: &dyn Fn(&str) -> bool,
    fetch: Fetch<'_>,
) -> Result<Vec<Row>, StorageError> {
    let mut out = Vec::new();
    visit(meta, from, to, wants, fetch, &mut |t, key, cell| {
        out.push((t, key.to_string(), Cell::decode(&mut Reader::new(cell))?));
        Ok(())
    })?;
    Ok(out)
}

/// What `visit` calls with each row: its time, key and encoded cell (`Cell::encode`).
pub type Visitor<'a> = dyn FnMut(u64, &str, &[u8]) -> Result<(), StorageError> + 'a;

/// `read` without materialising rows: for readers of many rows that need only part of each cell
/// (a replay of an hour visits hundreds of thousands).
pub fn visit<M: SegmentMeta + AsRef<StatsMeta>>(
    meta: &M,
    from: u64,
    to: u64,
    wants: &dyn Fn(&str) -> bool,
    fetch: Fetch<'_>,
    f: &mut Visitor<'_>,
) -> Result<(), StorageError> {
    for page in 0..meta.pages() {
        let (lo, hi) = meta.page_time_range(page).unwrap_or_else(|| meta.time_range());
        if hi < from || lo >= to {
            continue;
        }
        let p = Page::fetch(meta, page, &[cols::TIME, cols::KEY, cols::CELL], fetch)?;
        let rows = (|| {
            let times = p.deltas(cols::TIME)?;
            let body = p.fixed(cols::KEY)?;
            let (dict, codes) = col::decode_dict_codes(&body, p.rows)?;
            let ok: Vec<bool> = dict.iter().map(|k| wants(k)).collect();
            let cells_body = p.fixed(cols::CELL)?;
            let cells = col::decode_blobs(&cells_body, p.rows)?;
            for (r, t) in times.iter().enumerate() {
                let code = codes[r] as usize;
                if *t >= from && *t < to && ok[code] {
                    f(*t, dict[code], cells[r])?;
                }
            }
            Ok::<_, StorageError>(())
        })();
        rows.map_err(|e| e.within(|| p.place()))?;
    }
    Ok(())
}

/// What the statistics' tables hold at which resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Minute rows exist for every minute before this second ...
    pub minutes_until: u64,
    /// ... hour rows for every hour before this one ...
    pub hours_until: u64,
    /// ... and second rows from this second on.
    pub seconds_from: u64,
}

/// The resolution tables by type, for the store's fields.
pub type SecondsTable = Table<SecondsMeta>;
pub type MinutesTable = Table<MinutesMeta>;
pub type HoursTable = Table<HoursMeta>;
