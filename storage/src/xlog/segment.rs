//! The XLog table: one record per transaction, partitioned by *end* time (the scatter's x axis).
//! A segment holds the records of one partition sealed together, sorted by end time; its meta
//! keeps each page's first and last end time and the segment's services, so a narrow window reads
//! only its pages and a service filter skips whole segments.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Attributes, XLog};
use crate::apm::semconv::{self, Promoted};
use crate::attr_keys::{AttributeKeys, Key};
use crate::codec::{column as col, corrupt};
use crate::error::StorageError;
use crate::keys;
use crate::model::{SpanId, TraceId, Value};
use crate::table::attrs::{AttrColumns, MAX_SEGMENT_KEYS};
use crate::table::build::{self, Chunk, SegmentWriter};
use crate::table::page::Page;
use crate::table::{SegmentMeta, TableDef};

pub static TABLE: TableDef = TableDef {
    name: "xlog",
    meta_prefix: keys::META_XSEGMENT_PREFIX,
    resource_column: cols::RESOURCE,
    resource_table_column: cols::RESOURCE_TABLE,
};

/// Column ids; attribute key `i` of a segment is column `ATTR_BASE + i`.
pub mod cols {
    pub use crate::table::ATTR_BASE;

    pub const TRACE_ID: u16 = 0;
    pub const SPAN_ID: u16 = 1;
    pub const SERVICE: u16 = 2;
    pub const INSTANCE: u16 = 3;
    pub const ENDPOINT: u16 = 4;
    pub const END: u16 = 5;
    pub const ELAPSED: u16 = 6;
    pub const ERROR: u16 = 7;
    pub const ERROR_MESSAGE: u16 = 8;
    pub const HTTP_STATUS: u16 = 9;
    pub const CLIENT_IP: u16 = 10;
    pub const USER_ID: u16 = 11;
    pub const USER_AGENT: u16 = 12;
    pub const REFERER: u16 = 13;
    pub const CPU: u16 = 14;
    pub const ALLOC: u16 = 15;
    pub const SQL_COUNT: u16 = 16;
    pub const SQL_NS: u16 = 17;
    pub const API_COUNT: u16 = 18;
    pub const API_NS: u16 = 19;
    pub const RESOURCE: u16 = 20;
    /// One chunk (page 0) per segment.
    pub const RESOURCE_TABLE: u16 = 21;
}

/// An XLog segment's meta (JSON under `x` + partition + segment in the `meta` family).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct XLogSegmentMeta {
    pub partition: u64,
    pub id: u64,
    pub rows: u32,
    pub min_end_ns: u64,
    pub max_end_ns: u64,
    /// (first, last) end time of each page: a narrow time window reads only its pages.
    pub page_ends: Vec<(u64, u64)>,
    /// Distinct services, so a service filter skips whole segments; empty when there were more
    /// than `MAX_LISTED_SERVICES` (`services_unlisted`), since a meta stays in memory.
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub services_unlisted: bool,
    pub attr_keys: Vec<Key>,
    /// Distinct resources in the resource table, and every key they use.
    pub resources: u32,
    pub resource_keys: Vec<Key>,
    pub bytes: u64,
    /// Bit `i` set: the column of `PROMOTED_COLUMNS[i]` is not stored but computed from the
    /// attribute columns, as derivation took it from the entry span's attributes
    /// (`semconv::PROMOTED`). Set when every record of the segment was derived from a span;
    /// segments written before it store every column.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub computed: u8,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// The index in `semconv::PROMOTED` of a column the segment computes.
fn computed_index(meta: &XLogSegmentMeta, column: u16) -> Option<usize> {
    PROMOTED_COLUMNS.iter().position(|c| *c == column).filter(|i| meta.computed & (1 << i) != 0)
}

/// The columns of `semconv::PROMOTED`, in its order.
const PROMOTED_COLUMNS: [u16; 5] = [cols::CLIENT_IP, cols::USER_ID, cols::USER_AGENT, cols::REFERER, cols::HTTP_STATUS];

/// Services an XLog segment's meta names at most: enough for the segments of a normal estate to
/// be skipped by a service filter, few enough that a flood of service names does not grow
/// metadata that lives until retention.
pub const MAX_LISTED_SERVICES: usize = 64;

impl XLogSegmentMeta {
    pub fn has_resource_key(&self, key: &str) -> bool {
        self.resource_keys.iter().any(|k| &**k == key)
    }

    /// Whether the segment may hold records of `service`.
    pub fn may_hold_service(&self, service: &str) -> bool {
        self.services_unlisted || self.services.iter().any(|s| s == service)
    }
}

impl SegmentMeta for XLogSegmentMeta {
    const TABLE: &'static TableDef = &TABLE;

    fn partition(&self) -> u64 {
        self.partition
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn rows(&self) -> u32 {
        self.rows
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn attr_keys(&self) -> &[Key] {
        &self.attr_keys
    }

    fn intern(&mut self, keys: &AttributeKeys) {
        keys.intern(&mut self.attr_keys, self.partition);
        keys.intern(&mut self.resource_keys, self.partition);
    }

    fn resources(&self) -> u32 {
        self.resources
    }

    fn time_range(&self) -> (u64, u64) {
        (self.min_end_ns, self.max_end_ns)
    }

    fn page_time_range(&self, page: u32) -> Option<(u64, u64)> {
        self.page_ends.get(page as usize).copied()
    }

    fn computed_from(&self, column: u16) -> Option<Vec<u16>> {
        let i = computed_index(self, column)?;
        Some(semconv::PROMOTED[i].keys().iter().filter_map(|k| self.attr_column(k)).collect())
    }

    /// Each row's field as `semconv::transaction` took it: from the attributes of the keys the
    /// field reads, in the same order of preference.
    fn compute(page: &XPage<'_>, column: u16) -> Result<Vec<u8>, StorageError> {
        let i = computed_index(page.meta, column).ok_or_else(|| corrupt("computed column"))?;
        let promoted = semconv::PROMOTED[i];
        let mut decoded: Vec<Vec<Option<Value>>> = Vec::new();
        for k in promoted.keys() {
            let Some(c) = page.meta.attr_column(k) else { continue };
            if let Some(body) = page.body(c)? {
                decoded.push(col::decode_values(&body, page.rows)?);
            }
        }
        let sources: Vec<&[Option<Value>]> = decoded.iter().map(Vec::as_slice).collect();
        Ok(match promoted {
            Promoted::Text(_) => {
                let texts: Vec<&str> =
                    (0..page.rows).map(|r| first_in_row(&sources, r, semconv::text_value).unwrap_or("")).collect();
                col::encode_dict(&texts)
            }
            Promoted::HttpStatus => col::encode_varints(
                &(0..page.rows)
                    .map(|r| u64::from(first_in_row(&sources, r, semconv::status_value).unwrap_or(0)))
                    .collect::<Vec<_>>(),
            ),
        })
    }
}

/// A row's computed field: the first of its sources (the values of the keys the field reads, in
/// its order of preference) that `take` accepts, as `semconv::text_of` and `http_status_of` do.
fn first_in_row<'v, T>(sources: &[&'v [Option<Value>]], r: usize, take: impl Fn(&'v Value) -> Option<T>) -> Option<T> {
    sources.iter().find_map(|v| v[r].as_ref().and_then(&take))
}

pub struct BuiltXSegment {
    pub meta: XLogSegmentMeta,
    pub chunks: Vec<Chunk>,
}

/// Sorts records by end time and encodes them column by column: usually one segment, more when
/// they carry more distinct attribute keys than one segment holds.
pub fn build(partition: u64, next_id: &mut dyn FnMut() -> u64, records: &[&XLog]) -> Vec<BuiltXSegment> {
    let mut keyed: Vec<((u64, TraceId, SpanId), &XLog)> =
        records.iter().map(|x| ((x.end_ns(), x.trace_id, x.span_id), *x)).collect();
    keyed.sort_unstable_by_key(|(k, _)| *k);
    let order: Vec<&XLog> = keyed.into_iter().map(|(_, x)| x).collect();
    build::segments(&order, |x| &*x.attributes, |rows, attrs| encode(partition, next_id(), rows, attrs))
}

/// One segment of records already in end-time order.
fn encode(partition: u64, id: u64, order: &[&XLog], attrs: AttrColumns<'_>) -> BuiltXSegment {
    // Records derived from spans took these fields from the attributes the segment keeps (all of
    // them, unless a row had more keys than a segment holds and some were dropped).
    let computed = if attrs.keys.len() < MAX_SEGMENT_KEYS
        && order.iter().all(|x| matches!(x.attributes, Attributes::Derived(_)))
    {
        (1u8 << PROMOTED_COLUMNS.len()) - 1
    } else {
        0
    };
    let stored = |c: u16| PROMOTED_COLUMNS.iter().position(|p| *p == c).is_none_or(|i| computed & (1 << i) == 0);
    let mut w = SegmentWriter::new(&TABLE, attrs, order.iter().map(|x| &x.resource));
    let mut services: Vec<&str> = order.iter().map(|x| &*x.service).collect();
    services.sort_unstable();
    services.dedup();
    let mut page_ends = Vec::new();
    for (page, start, len) in build::pages(order.len()) {
        let rows = &order[start..start + len];
        page_ends.push((rows[0].end_ns(), rows[rows.len() - 1].end_ns()));
        let strs = |f: fn(&XLog) -> &str| rows.iter().map(|x| f(x)).collect::<Vec<_>>();
        let nums = |f: fn(&XLog) -> u64| rows.iter().map(|x| f(x)).collect::<Vec<_>>();
        w.put(cols::TRACE_ID, page, &col::encode_trace_ids(&rows.iter().map(|x| x.trace_id).collect::<Vec<_>>()));
        w.put(cols::SPAN_ID, page, &col::encode_span_ids(&rows.iter().map(|x| x.span_id).collect::<Vec<_>>()));
        w.put(cols::SERVICE, page, &col::encode_dict(&strs(|x| &x.service)));
        w.put(cols::INSTANCE, page, &col::encode_dict(&strs(|x| &x.instance)));
        w.put(cols::ENDPOINT, page, &col::encode_dict(&strs(|x| &x.endpoint)));
        w.put(cols::END, page, &col::encode_delta(&nums(XLog::end_ns)));
        w.put(cols::ELAPSED, page, &col::encode_varints(&nums(|x| x.elapsed_ns)));
        w.put(cols::ERROR, page, &col::encode_u8(&rows.iter().map(|x| u8::from(x.error)).collect::<Vec<_>>()));
        w.put(cols::ERROR_MESSAGE, page, &col::encode_dict(&strs(|x| &x.error_message)));
        if stored(cols::HTTP_STATUS) {
            w.put(cols::HTTP_STATUS, page, &col::encode_varints(&nums(|x| u64::from(x.http_status))));
        }
        if stored(cols::CLIENT_IP) {
            w.put(cols::CLIENT_IP, page, &col::encode_dict(&strs(|x| &x.client_ip)));
        }
        if stored(cols::USER_ID) {
            w.put(cols::USER_ID, page, &col::encode_dict(&strs(|x| &x.user_id)));
        }
        if stored(cols::USER_AGENT) {
            w.put(cols::USER_AGENT, page, &col::encode_dict(&strs(|x| &x.user_agent)));
        }
        if stored(cols::REFERER) {
            w.put(cols::REFERER, page, &col::encode_dict(&strs(|x| &x.referer)));
        }
        w.put(cols::CPU, page, &col::encode_varints(&nums(|x| x.cpu_ns)));
        w.put(cols::ALLOC, page, &col::encode_varints(&nums(|x| x.alloc_bytes)));
        w.put(cols::SQL_COUNT, page, &col::encode_varints(&nums(|x| u64::from(x.sql_count))));
        w.put(cols::SQL_NS, page, &col::encode_varints(&nums(|x| x.sql_ns)));
        w.put(cols::API_COUNT, page, &col::encode_varints(&nums(|x| u64::from(x.api_count))));
        w.put(cols::API_NS, page, &col::encode_varints(&nums(|x| x.api_ns)));
        w.put_shared(page, start, len);
    }
    let written = w.finish();
    let meta = XLogSegmentMeta {
        partition,
        id,
        rows: order.len() as u32,
        min_end_ns: order.first().map_or(0, |x| x.end_ns()),
        max_end_ns: order.last().map_or(0, |x| x.end_ns()),
        page_ends,
        services_unlisted: services.len() > MAX_LISTED_SERVICES,
        services: if services.len() > MAX_LISTED_SERVICES {
            Vec::new()
        } else {
            services.iter().map(|s| s.to_string()).collect()
        },
        attr_keys: written.attr_keys,
        resources: written.resources,
        resource_keys: written.resource_keys,
        bytes: written.bytes,
        computed,
    };
    BuiltXSegment { meta, chunks: written.chunks }
}

/// One page of an XLog segment.
pub type XPage<'m> = Page<'m, XLogSegmentMeta>;

/// Every column of a segment's pages, fixed and attribute, and the resource table.
pub fn all_columns(meta: &XLogSegmentMeta) -> Vec<u16> {
    (0..=cols::RESOURCE_TABLE).chain(XPage::attr_columns(meta)).collect()
}

/// Every record of the page, for the rows in `rows` (ascending); the page holds `all_columns`.
pub fn records(page: &XPage<'_>, rows: &[usize]) -> Result<Vec<XLog>, StorageError> {
    let n = page.rows;
    let pick = |v: Vec<Arc<str>>| -> Vec<Arc<str>> { rows.iter().map(|&r| v[r].clone()).collect() };
    let dict = |c: u16| -> Result<Vec<Arc<str>>, StorageError> { Ok(pick(page.shared_strings(c, 0..n)?)) };
    let trace_ids = page.trace_ids(cols::TRACE_ID)?;
    let span_ids = page.span_ids(cols::SPAN_ID)?;
    let mut attrs = page.attributes(0..n)?;
    // A field the segment computes is taken from the attribute values just decoded, by the rule
    // `XLogSegmentMeta::compute` follows, rather than computed again from their columns.
    let sources = |i: usize| -> Vec<&[Option<Value>]> {
        let keys = semconv::PROMOTED[i].keys();
        keys.iter().filter_map(|k| attrs.iter().find(|(a, _)| &***a == *k).map(|(_, v)| v.as_slice())).collect()
    };
    let text = |c: u16| -> Result<Vec<Arc<str>>, StorageError> {
        let Some(i) = computed_index(page.meta, c) else { return dict(c) };
        let sources = sources(i);
        Ok(rows
            .iter()
            .map(|&r| first_in_row(&sources, r, semconv::shared_text_value).cloned().unwrap_or_default())
            .collect())
    };
    let (services, instances, endpoints) = (dict(cols::SERVICE)?, dict(cols::INSTANCE)?, dict(cols::ENDPOINT)?);
    let (messages, ips, users) = (dict(cols::ERROR_MESSAGE)?, text(cols::CLIENT_IP)?, text(cols::USER_ID)?);
    let (agents, referers) = (text(cols::USER_AGENT)?, text(cols::REFERER)?);
    let status: Vec<u64> = match computed_index(page.meta, cols::HTTP_STATUS) {
        Some(i) => {
            let sources = sources(i);
            (0..n).map(|r| u64::from(first_in_row(&sources, r, semconv::status_value).unwrap_or(0))).collect()
        }
        None => page.varints(cols::HTTP_STATUS)?,
    };
    let ends = page.deltas(cols::END)?;
    let errors = page.u8s(cols::ERROR)?;
    let [elapsed, cpu, alloc, sql_count, sql_ns, api_count, api_ns] =
        [cols::ELAPSED, cols::CPU, cols::ALLOC, cols::SQL_COUNT, cols::SQL_NS, cols::API_COUNT, cols::API_NS]
            .map(|c| page.varints(c));
    let (elapsed, cpu, alloc) = (elapsed?, cpu?, alloc?);
    let (sql_count, sql_ns, api_count, api_ns) = (sql_count?, sql_ns?, api_count?, api_ns?);
    let u32_of = |v: u64| u32::try_from(v).map_err(|_| corrupt("xlog u32 column"));
    let resources = page.resources()?;
    let resource_idx = page.resource_index()?;
    let mut out = Vec::with_capacity(rows.len());
    for (i, &r) in rows.iter().enumerate() {
        let elapsed_ns = elapsed[r];
        out.push(XLog {
            trace_id: trace_ids[r],
            span_id: span_ids[r],
            service: services[i].clone(),
            instance: instances[i].clone(),
            endpoint: endpoints[i].clone(),
            start_ns: ends[r].saturating_sub(elapsed_ns),
            elapsed_ns,
            error: errors[r] != 0,
            error_message: messages[i].clone(),
            http_status: u32_of(status[r])?,
            client_ip: ips[i].clone(),
            user_id: users[i].clone(),
            user_agent: agents[i].clone(),
            referer: referers[i].clone(),
            cpu_ns: cpu[r],
            alloc_bytes: alloc[r],
            sql_count: u32_of(sql_count[r])?,
            sql_ns: sql_ns[r],
            api_count: u32_of(api_count[r])?,
            api_ns: api_ns[r],
            attributes: attrs
                .iter_mut()
                .filter_map(|(k, v)| v[r].take().map(|v| (crate::model::Key::clone(k), v)))
                .collect(),
            resource: resources[resource_idx[r]].clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::arb_xlog;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// How a record reads back: attributes in column order.
    fn stored_form(x: &XLog, keys: &[Key]) -> XLog {
        let mut y = x.clone();
        y.attributes = keys.iter().filter_map(|k| x.attributes.iter().find(|(a, _)| **a == **k).cloned()).collect();
        y
    }

    fn unique_keys(mut x: XLog) -> XLog {
        let mut seen = std::collections::HashSet::new();
        x.attributes = x.attributes.iter().filter(|(k, _)| seen.insert(k.clone())).cloned().collect();
        let mut seen = std::collections::HashSet::new();
        let mut res = (*x.resource).clone();
        res.attributes.retain(|(k, _)| seen.insert(k.clone()));
        x.resource = Arc::new(res);
        x
    }

    #[test]
    fn a_segment_of_many_services_lists_none_and_may_hold_any() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let base = arb_xlog().new_tree(&mut runner).unwrap().current();
        let named = |n: usize| {
            let batch: Vec<XLog> = (0..n)
                .map(|i| XLog {
                    service: format!("svc-{i}").into(),
                    span_id: crate::testing::span_id(i as u64),
                    ..base.clone()
                })
                .collect();
            let refs: Vec<&XLog> = batch.iter().collect();
            build(3, &mut || 9, &refs).remove(0).meta
        };
        let few = named(MAX_LISTED_SERVICES);
        assert!(!few.services_unlisted && few.may_hold_service("svc-0") && !few.may_hold_service("other"));
        let many = named(MAX_LISTED_SERVICES + 1);
        assert!(many.services_unlisted && many.services.is_empty() && many.may_hold_service("other"));
        let back: XLogSegmentMeta = serde_json::from_slice(&serde_json::to_vec(&many).unwrap()).unwrap();
        assert_eq!(back, many);
    }

    /// Every key a promoted field reads, and values of every kind they may hold.
    fn arb_promoted_attrs() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
        let keys: Vec<&'static str> =
            semconv::PROMOTED.iter().flat_map(|p| p.keys().iter().copied()).chain(["other"]).collect();
        let value = prop_oneof![
            "[a-z0-9.]{0,6}".prop_map(|s| Value::Str(s.into())),
            (-3i64..700).prop_map(Value::Int),
            Just(Value::Str("404".into())),
            proptest::collection::vec("[a-z]{0,3}".prop_map(|s| Value::Str(s.into())), 0..3)
                .prop_map(|a| Value::Array(a.into())),
            Just(Value::Bool(true)),
        ];
        proptest::collection::vec((proptest::sample::select(keys), value), 0..10).prop_map(|mut kvs| {
            let mut seen = std::collections::HashSet::new();
            kvs.retain(|(k, _)| seen.insert(*k));
            kvs
        })
    }

    fn derived(attrs: &[(&'static str, Value)], i: u64) -> XLog {
        let span = crate::testing::span(1, i + 1).start(1_000 + i).attrs(attrs).arc();
        semconv::transaction(&span, Arc::default())
    }

    fn read_all(built: &BuiltXSegment, columns: &[u16]) -> Vec<XPage<'static>> {
        let fetch = crate::table::build::in_memory(&built.chunks);
        let meta: &'static XLogSegmentMeta = Box::leak(Box::new(built.meta.clone()));
        (0..meta.pages()).map(|p| Page::fetch(meta, p, columns, &fetch).unwrap()).collect()
    }

    #[test]
    fn a_segment_of_records_from_spans_stores_their_promoted_fields_once() {
        let records: Vec<XLog> = (0..5000)
            .map(|i| {
                derived(
                    &[
                        ("client.address", Value::Str(format!("10.0.0.{}", i % 7).into())),
                        ("enduser.id", Value::Str(format!("u{i}").into())),
                        ("http.response.status_code", Value::Int(200)),
                    ],
                    i,
                )
            })
            .collect();
        let refs: Vec<&XLog> = records.iter().collect();
        let built = build(3, &mut || 9, &refs).remove(0);
        assert_eq!(built.meta.computed, 0b11111);
        assert!(built.chunks.iter().all(|(c, ..)| !PROMOTED_COLUMNS.contains(c)), "not stored");
        // Asked for alone, the fields come from the attribute columns the page fetches for them.
        let pages = read_all(&built, &[cols::END, cols::CLIENT_IP, cols::USER_ID, cols::HTTP_STATUS]);
        let ips: Vec<String> = pages.iter().flat_map(|p| p.strings(cols::CLIENT_IP, 0..p.rows).unwrap()).collect();
        let statuses: Vec<u64> = pages.iter().flat_map(|p| p.varints(cols::HTTP_STATUS).unwrap()).collect();
        assert_eq!(ips.len(), 5000);
        assert!(ips.iter().all(|ip| ip.starts_with("10.0.0.")) && statuses.iter().all(|s| *s == 200));
        assert!(pages[0].attributes(0..1).unwrap().is_empty(), "the sources are not answered as asked-for columns");
        // A segment with one record of an agent stores every column, as before.
        let mut native = records[0].clone();
        native.attributes = Attributes::Own(native.attributes.to_vec());
        let mixed = build(3, &mut || 9, &[&records[1], &native]).remove(0);
        assert_eq!(mixed.meta.computed, 0);
        assert!(mixed.chunks.iter().any(|(c, ..)| *c == cols::CLIENT_IP));
        // Metas written before the field read as storing every column.
        let mut json: serde_json::Value = serde_json::to_value(&built.meta).unwrap();
        json.as_object_mut().unwrap().remove("computed");
        assert_eq!(serde_json::from_value::<XLogSegmentMeta>(json).unwrap().computed, 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn fields_computed_from_attributes_are_the_ones_derivation_took(
            attrs in proptest::collection::vec(arb_promoted_attrs(), 1..40)
        ) {
            let derived: Vec<XLog> = attrs.iter().enumerate().map(|(i, a)| derived(a, i as u64)).collect();
            let refs: Vec<&XLog> = derived.iter().collect();
            let built = build(3, &mut || 9, &refs).remove(0);
            prop_assert_eq!(built.meta.computed, 0b11111);
            let mut back = Vec::new();
            for page in read_all(&built, &all_columns(&built.meta)) {
                back.extend(records(&page, &(0..page.rows).collect::<Vec<_>>()).unwrap());
            }
            let fields = |x: &XLog| (x.span_id, x.client_ip.clone(), x.user_id.clone(), x.user_agent.clone(), x.referer.clone(), x.http_status);
            let mut want: Vec<_> = derived.iter().map(fields).collect();
            let mut got: Vec<_> = back.iter().map(fields).collect();
            want.sort();
            got.sort();
            prop_assert_eq!(&got, &want);
            // The same fields as columns alone: computed by the page from their sources.
            let alone = [cols::SPAN_ID, cols::CLIENT_IP, cols::USER_ID, cols::USER_AGENT, cols::REFERER, cols::HTTP_STATUS];
            let mut columns = Vec::new();
            for p in read_all(&built, &alone) {
                let strs = |c| p.shared_strings(c, 0..p.rows).unwrap();
                let (ips, users, agents, referers) = (strs(cols::CLIENT_IP), strs(cols::USER_ID), strs(cols::USER_AGENT), strs(cols::REFERER));
                let (ids, status) = (p.span_ids(cols::SPAN_ID).unwrap(), p.varints(cols::HTTP_STATUS).unwrap());
                for r in 0..p.rows {
                    columns.push((ids[r], ips[r].clone(), users[r].clone(), agents[r].clone(), referers[r].clone(), status[r] as u32));
                }
            }
            columns.sort();
            prop_assert_eq!(columns, want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn xlog_segments_round_trip(batch in proptest::collection::vec(arb_xlog().prop_map(unique_keys), 1..60)) {
            let refs: Vec<&XLog> = batch.iter().collect();
            let built = build(3, &mut || 9, &refs).remove(0);
            let fetch = crate::table::build::in_memory(&built.chunks);
            let mut back = Vec::new();
            for p in 0..built.meta.pages() {
                let page = Page::fetch(&built.meta, p, &all_columns(&built.meta), &fetch).unwrap();
                back.extend(records(&page, &(0..page.rows).collect::<Vec<_>>()).unwrap());
            }
            let mut expect: Vec<XLog> = batch.iter().map(|x| stored_form(x, &built.meta.attr_keys)).collect();
            expect.sort_by_key(|x| (x.end_ns(), x.trace_id, x.span_id));
            prop_assert_eq!(back, expect);
        }
    }
}
