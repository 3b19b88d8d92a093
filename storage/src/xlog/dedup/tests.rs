use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::model::{SpanId, TraceId};
use crate::table::build::in_memory;
use crate::table::page::Page;
use crate::xlog::segment::{all_columns, build, records};

/// A record of identity `id` ending at `end`, with `calls` children counted.
fn copy(id: u32, end: u64, calls: u32) -> XLog {
    XLog {
        trace_id: TraceId(u128::from(id).to_be_bytes()),
        span_id: SpanId(u64::from(id).to_be_bytes()),
        service: format!("svc{}", id % 3).into(),
        start_ns: end - 5,
        elapsed_ns: 5,
        sql_count: calls,
        ..Default::default()
    }
}

fn id_of(x: &XLog) -> u32 {
    u64::from_be_bytes(x.span_id.0) as u32
}

/// Records with their copies: (identity, end, [(source, calls)]); source 0..3 a segment, 3 memory.
type World = Vec<(u32, u64, Vec<(u8, u32)>)>;

fn arb_world() -> impl Strategy<Value = World> {
    proptest::collection::vec((10u64..9000, proptest::collection::btree_map(0u8..4, 0u32..3, 1..4)), 1..400)
        .prop_map(|v| v.into_iter().enumerate().map(|(i, (end, m))| (i as u32, end, m.into_iter().collect())).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn a_scan_keeps_each_record_once_its_most_complete_copy(world in arb_world(), from in 0u64..4000, len in 1u64..9000) {
        let to = from + len;
        let mut sources: Vec<Vec<XLog>> = vec![Vec::new(); 4];
        for (id, end, copies) in &world {
            for (src, calls) in copies {
                sources[*src as usize].push(copy(*id, *end, *calls));
            }
        }
        let mut chunks = Vec::new();
        let mut metas = Vec::new();
        for (i, recs) in sources[..3].iter().enumerate() {
            if recs.is_empty() {
                continue;
            }
            let refs: Vec<&XLog> = recs.iter().collect();
            for b in build(0, &mut || i as u64 + 1, &refs) {
                chunks.push((b.meta.id, b.chunks));
                metas.push(b.meta);
            }
        }
        let fetch_of = |id: u64| in_memory(&chunks.iter().find(|(i, _)| *i == id).unwrap().1);
        let units = plan(sources[3].clone(), metas, from, to, |_| 0);
        let mut kept: HashMap<u32, Vec<u32>> = HashMap::new();
        for unit in &units {
            let census = unit
                .census(|p| Ok(Some(Page::fetch(&*p.meta, p.page, &CENSUS_COLUMNS, fetch_of(p.meta.id))?)))
                .unwrap();
            for (i, x) in unit.memory.iter().enumerate() {
                if census.keeps_memory(unit, i) && (from..to).contains(&x.end_ns()) {
                    kept.entry(id_of(x)).or_default().push(x.sql_count);
                }
            }
            for p in &unit.pages {
                let page = Page::fetch(&*p.meta, p.page, &all_columns(&p.meta), fetch_of(p.meta.id)).unwrap();
                let keep = census.keeps(p, &page).unwrap();
                let rows: Vec<usize> = (0..page.rows).filter(|r| keep[*r]).collect();
                for x in records(&page, &rows).unwrap() {
                    if (from..to).contains(&x.end_ns()) {
                        kept.entry(id_of(&x)).or_default().push(x.sql_count);
                    }
                }
            }
        }
        for (id, end, copies) in &world {
            let got = kept.remove(id).unwrap_or_default();
            if (from..to).contains(end) {
                let best = copies.iter().map(|c| c.1).max().unwrap();
                prop_assert_eq!(got, vec![best], "record {}", id);
            } else {
                prop_assert!(got.is_empty());
            }
        }
    }
}

#[test]
fn segments_that_do_not_meet_are_not_contested() {
    let a: Vec<XLog> = (0..5000).map(|i| copy(i, 1000 + u64::from(i), 0)).collect();
    let b: Vec<XLog> = (5000..9000).map(|i| copy(i, 1000 + u64::from(i), 0)).collect();
    let metas: Vec<XLogSegmentMeta> = [(1, &a), (2, &b)]
        .into_iter()
        .flat_map(|(id, v)| build(0, &mut || id, &v.iter().collect::<Vec<_>>()).into_iter().map(|b| b.meta))
        .collect();
    let units = plan(vec![copy(9999, 7000, 1)], metas, 0, u64::MAX, |_| 0);
    assert_eq!(units.len(), 1);
    // Only the page of segment 2 holding end 7000 is contested, at that instant only.
    let contested: Vec<_> = units[0].pages.iter().filter(|p| !p.contested.is_empty()).collect();
    assert_eq!(contested.len(), 1);
    assert_eq!(contested[0].meta.id, 2);
    assert_eq!(contested[0].contested, vec![(7000, 7000)]);
}
