//! The transaction list: full records of the matching transactions, the latest `limit` kept,
//! each record once (its most complete copy).

use rustc_hash::{FxHashMap, FxHashSet};

use super::filter::XLogFilter;
use super::scan::{identity, Sources};
use super::segment::{self, cols, XLogSegmentMeta, XPage};
use super::XLog;
use crate::codec::column as col;
use crate::error::StorageError;
use crate::table::top::Latest;
use crate::table::Fetched;

/// Full records of the matching transactions, oldest first, and whether the limit cut some.
/// Each record once: of several copies, the most complete (`XLog::completeness`).
pub fn records<F: Fn(&XLogSegmentMeta, &[(u16, u32)]) -> Fetched>(
    src: &Sources<'_, F>,
    filter: &XLogFilter,
) -> Result<(Vec<XLog>, bool), StorageError> {
    // The best copy of each record seen so far: a copy enters only if it beats it.
    let mut best: FxHashMap<u128, (u64, u64)> = FxHashMap::default();
    let mut better = |id: u128, c: (u64, u64)| match best.get(&id) {
        Some(b) if *b >= c => false,
        _ => {
            best.insert(id, c);
            true
        }
    };
    let mut latest: Latest<XLog> = Latest::new(filter.limit, filter.limit);
    for x in src.memory.iter().filter(|x| filter.matches(x)) {
        if better(identity(&x.trace_id, &x.span_id), x.completeness()) {
            latest.push(x.end_ns(), x.clone());
        }
    }
    for (meta, page) in src.pages(filter) {
        if !latest.wants(meta.page_ends[page as usize].1) {
            latest.cutoff.skipped();
            continue;
        }
        let fetch = |want: &[(u16, u32)]| (src.fetch)(meta, want);
        let mut columns = filter.columns(meta);
        for c in [cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS] {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        let probe = match XPage::fetch(meta, page, &columns, fetch) {
            Ok(p) => p,
            Err(StorageError::PartitionDropped(_)) => continue,
            Err(e) => return Err(e),
        };
        let at = |e: StorageError| e.within(|| probe.place());
        let (rows, ends) = filter.page_matches(&probe).map_err(at)?;
        if rows.is_empty() {
            continue;
        }
        let trace_ids = col::decode_trace_ids(&probe.fixed(cols::TRACE_ID)?, probe.rows).map_err(at)?;
        let span_ids = col::decode_span_ids(&probe.fixed(cols::SPAN_ID)?, probe.rows).map_err(at)?;
        let [sql_count, sql_ns, api_count, api_ns] =
            [cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS].map(|c| probe.varints(c).map_err(at));
        let (sql_count, sql_ns, api_count, api_ns) = (sql_count?, sql_ns?, api_count?, api_ns?);
        let rows: Vec<usize> = rows
            .into_iter()
            .filter(|&r| {
                let c = (sql_count[r].saturating_add(api_count[r]), sql_ns[r].saturating_add(api_ns[r]));
                latest.wants(ends[r]) && better(identity(&trace_ids[r], &span_ids[r]), c)
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let full = match XPage::fetch(meta, page, &segment::all_columns(meta), fetch) {
            Ok(p) => p,
            Err(StorageError::PartitionDropped(_)) => continue,
            Err(e) => return Err(e),
        };
        for x in segment::records(&full, &rows).map_err(|e| e.within(|| full.place()))? {
            latest.push(x.end_ns(), x);
        }
    }
    let (kept, truncated) = latest.finish();
    // A copy that was beaten after it entered is left out here.
    let mut emitted: FxHashSet<u128> = FxHashSet::default();
    let records = kept
        .into_iter()
        .map(|(_, x)| x)
        .filter(|x| {
            let id = identity(&x.trace_id, &x.span_id);
            best.get(&id) == Some(&x.completeness()) && emitted.insert(id)
        })
        .collect();
    Ok((records, truncated))
}
