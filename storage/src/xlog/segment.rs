//! A sealed XLog segment: the records of one partition (by end time) written at one seal, sorted
//! by end time, one chunk per (column, page). Segments share the `chunks` column family with span
//! segments (segment ids are unique across both); their metas live under their own prefix.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::XLog;
use crate::codec::column as col;
use crate::codec::groups::{key_runs, AttrColumns, ResourceTable, MAX_SEGMENT_KEYS};
use crate::codec::row::read_kvs;
use crate::codec::{corrupt, Reader};
use crate::error::StorageError;
use crate::model::{Resource, SpanId, TraceId, Value};
use crate::segment::{Fetched, PAGE_ROWS};

/// Column ids; attribute key `i` of a segment is column `ATTR_BASE + i`.
pub mod cols {
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
    pub const ATTR_BASE: u16 = 32;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct XSegmentMeta {
    pub partition: u64,
    pub id: u64,
    pub rows: u32,
    pub min_end_ns: u64,
    pub max_end_ns: u64,
    /// (first, last) end time of each page: a narrow time window reads only its pages.
    pub page_ends: Vec<(u64, u64)>,
    /// Distinct services, so a service filter skips whole segments.
    pub services: Vec<String>,
    pub attr_keys: Vec<String>,
    /// Distinct resources in the resource table, and every key they use.
    pub resources: u32,
    pub resource_keys: Vec<String>,
    pub bytes: u64,
}

impl XSegmentMeta {
    pub fn pages(&self) -> u32 {
        (self.rows as usize).div_ceil(PAGE_ROWS) as u32
    }

    pub fn page_rows(&self, page: u32) -> usize {
        (self.rows as usize - page as usize * PAGE_ROWS).min(PAGE_ROWS)
    }

    pub fn attr_column(&self, key: &str) -> Option<u16> {
        // A meta with more keys than a segment holds is refused by `Page::fetch`.
        self.attr_keys.iter().position(|k| k == key).and_then(|i| u16::try_from(i).ok()?.checked_add(cols::ATTR_BASE))
    }
}

pub struct BuiltXSegment {
    pub meta: XSegmentMeta,
    pub chunks: Vec<(u16, u32, Vec<u8>)>,
}

/// Sorts records by end time and encodes them column by column: usually one segment, more when
/// they carry more distinct attribute keys than one segment holds.
pub fn build(partition: u64, next_id: &mut dyn FnMut() -> u64, records: &[&XLog]) -> Vec<BuiltXSegment> {
    let mut keyed: Vec<((u64, TraceId, SpanId), &XLog)> =
        records.iter().map(|x| ((x.end_ns(), x.trace_id, x.span_id), *x)).collect();
    keyed.sort_unstable_by_key(|(k, _)| *k);
    let order: Vec<&XLog> = keyed.into_iter().map(|(_, x)| x).collect();

    let attrs = AttrColumns::new(order.iter().map(|x| &*x.attributes));
    if attrs.keys.len() <= MAX_SEGMENT_KEYS {
        return vec![encode(partition, next_id(), &order, attrs)];
    }
    key_runs(order.iter().map(|x| &*x.attributes), MAX_SEGMENT_KEYS)
        .into_iter()
        .map(|run| {
            let rows = &order[run];
            let mut attrs = AttrColumns::new(rows.iter().map(|x| &*x.attributes));
            let dropped = attrs.keep_keys(MAX_SEGMENT_KEYS);
            if dropped > 0 {
                tracing::warn!(dropped, "a record has more attribute keys than a segment holds; the rest are not kept");
            }
            encode(partition, next_id(), rows, attrs)
        })
        .collect()
}

/// One segment of records already in end-time order.
fn encode(partition: u64, id: u64, order: &[&XLog], mut attrs: AttrColumns<'_>) -> BuiltXSegment {
    let mut table = ResourceTable::default();
    let mut resource_keys: Vec<&str> = Vec::new();
    let resource_idx: Vec<u64> = order
        .iter()
        .map(|x| {
            let (i, new) = table.index(&x.resource);
            if new {
                for (k, _) in &x.resource.attributes {
                    if !resource_keys.contains(&k.as_str()) {
                        resource_keys.push(k);
                    }
                }
            }
            i
        })
        .collect();
    let mut services: Vec<&str> = order.iter().map(|x| x.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();

    let mut chunks = Vec::new();
    let mut compressor = col::Compressor::new();
    let mut push = |c: u16, page: u32, body: Vec<u8>| chunks.push((c, page, compressor.compress(&body)));
    let mut page_ends = Vec::new();
    for (p, rows) in order.chunks(PAGE_ROWS).enumerate() {
        let page = p as u32;
        page_ends.push((rows[0].end_ns(), rows[rows.len() - 1].end_ns()));
        let strs = |f: fn(&XLog) -> &str| rows.iter().map(|x| f(x)).collect::<Vec<_>>();
        let nums = |f: fn(&XLog) -> u64| rows.iter().map(|x| f(x)).collect::<Vec<_>>();
        push(cols::TRACE_ID, page, col::encode_trace_ids(&rows.iter().map(|x| x.trace_id).collect::<Vec<_>>()));
        push(cols::SPAN_ID, page, col::encode_span_ids(&rows.iter().map(|x| x.span_id).collect::<Vec<_>>()));
        push(cols::SERVICE, page, col::encode_dict(&strs(|x| &x.service)));
        push(cols::INSTANCE, page, col::encode_dict(&strs(|x| &x.instance)));
        push(cols::ENDPOINT, page, col::encode_dict(&strs(|x| &x.endpoint)));
        push(cols::END, page, col::encode_delta(&nums(XLog::end_ns)));
        push(cols::ELAPSED, page, col::encode_varints(&nums(|x| x.elapsed_ns)));
        push(cols::ERROR, page, col::encode_u8(&rows.iter().map(|x| u8::from(x.error)).collect::<Vec<_>>()));
        push(cols::ERROR_MESSAGE, page, col::encode_dict(&strs(|x| &x.error_message)));
        push(cols::HTTP_STATUS, page, col::encode_varints(&nums(|x| u64::from(x.http_status))));
        push(cols::CLIENT_IP, page, col::encode_dict(&strs(|x| &x.client_ip)));
        push(cols::USER_ID, page, col::encode_dict(&strs(|x| &x.user_id)));
        push(cols::USER_AGENT, page, col::encode_dict(&strs(|x| &x.user_agent)));
        push(cols::REFERER, page, col::encode_dict(&strs(|x| &x.referer)));
        push(cols::CPU, page, col::encode_varints(&nums(|x| x.cpu_ns)));
        push(cols::ALLOC, page, col::encode_varints(&nums(|x| x.alloc_bytes)));
        push(cols::SQL_COUNT, page, col::encode_varints(&nums(|x| u64::from(x.sql_count))));
        push(cols::SQL_NS, page, col::encode_varints(&nums(|x| x.sql_ns)));
        push(cols::API_COUNT, page, col::encode_varints(&nums(|x| u64::from(x.api_count))));
        push(cols::API_NS, page, col::encode_varints(&nums(|x| x.api_ns)));
        let start = p * PAGE_ROWS;
        push(cols::RESOURCE, page, col::encode_varints(&resource_idx[start..start + rows.len()]));
        for (c, body) in attrs.page(start, rows.len()) {
            push(cols::ATTR_BASE + c as u16, page, body);
        }
    }
    push(cols::RESOURCE_TABLE, 0, col::encode_blobs(&table.encoded));
    let meta = XSegmentMeta {
        partition,
        id,
        rows: order.len() as u32,
        min_end_ns: order.first().map_or(0, |x| x.end_ns()),
        max_end_ns: order.last().map_or(0, |x| x.end_ns()),
        page_ends,
        services: services.iter().map(|s| s.to_string()).collect(),
        attr_keys: attrs.keys.iter().map(|k| k.to_string()).collect(),
        resources: table.encoded.len() as u32,
        resource_keys: resource_keys.iter().map(|k| k.to_string()).collect(),
        bytes: chunks.iter().map(|(_, _, b)| b.len() as u64).sum(),
    };
    BuiltXSegment { meta, chunks }
}

/// The stored chunks of one page, fetched together, decompressed as asked.
pub struct Page<'m> {
    pub meta: &'m XSegmentMeta,
    pub rows: usize,
    wanted: Vec<u16>,
    stored: Vec<Option<Vec<u8>>>,
    page: u32,
}

impl<'m> Page<'m> {
    pub fn fetch(
        meta: &'m XSegmentMeta,
        page: u32,
        columns: &[u16],
        fetch: impl Fn(&[(u16, u32)]) -> Fetched,
    ) -> Result<Self, StorageError> {
        let want: Vec<(u16, u32)> =
            columns.iter().map(|c| (*c, if *c == cols::RESOURCE_TABLE { 0 } else { page })).collect();
        let place = || format!("xlog partition {} segment {} page {page}", meta.partition, meta.id);
        if meta.attr_keys.len() > MAX_SEGMENT_KEYS || page >= meta.pages() {
            return Err(corrupt("segment meta").within(place));
        }
        let stored = fetch(&want)?;
        Ok(Self { meta, rows: meta.page_rows(page), wanted: columns.to_vec(), stored, page })
    }

    /// The column's page body; `None` for an attribute column with no values in this page.
    pub fn body(&self, c: u16) -> Result<Option<Cow<'_, [u8]>>, StorageError> {
        let i = self.wanted.iter().position(|w| *w == c).expect("column was fetched");
        let column = || format!("column {c}");
        match self.stored[i].as_deref() {
            Some(chunk) => Ok(Some(col::decompress(chunk).map_err(|e| e.within(column))?)),
            None if c >= cols::ATTR_BASE => Ok(None),
            None => Err(corrupt("missing chunk").within(column)),
        }
    }

    /// Names this page in an error about its data.
    pub fn place(&self) -> String {
        format!("xlog partition {} segment {} page {}", self.meta.partition, self.meta.id, self.page)
    }

    pub fn fixed(&self, c: u16) -> Result<Cow<'_, [u8]>, StorageError> {
        Ok(self.body(c)?.expect("fixed columns are always stored"))
    }

    pub fn varints(&self, c: u16) -> Result<Vec<u64>, StorageError> {
        col::decode_varints(&self.fixed(c)?, self.rows)
    }

    /// The segment's resource table (fetch `RESOURCE_TABLE` with the page).
    pub fn resources(&self) -> Result<Vec<Arc<Resource>>, StorageError> {
        let body = self.fixed(cols::RESOURCE_TABLE)?;
        col::decode_blobs(&body, self.meta.resources as usize)?
            .into_iter()
            .map(|b| Ok(Arc::new(Resource { attributes: read_kvs(&mut Reader::new(b))? })))
            .collect()
    }

    /// Each row's index into the resource table, checked against the table's size.
    pub fn resource_index(&self) -> Result<Vec<usize>, StorageError> {
        self.varints(cols::RESOURCE)?
            .into_iter()
            .map(|i| {
                (i < u64::from(self.meta.resources)).then_some(i as usize).ok_or_else(|| corrupt("resource index"))
            })
            .collect()
    }

    /// Every record of the page, for the rows in `rows` (ascending).
    pub fn records(&self, rows: &[usize]) -> Result<Vec<XLog>, StorageError> {
        let n = self.rows;
        let pick = |v: Vec<String>| -> Vec<String> { rows.iter().map(|&r| v[r].clone()).collect() };
        let dict = |c: u16| -> Result<Vec<String>, StorageError> { Ok(pick(col::decode_dict(&self.fixed(c)?, n)?)) };
        let trace_ids = col::decode_trace_ids(&self.fixed(cols::TRACE_ID)?, n)?;
        let span_ids = col::decode_span_ids(&self.fixed(cols::SPAN_ID)?, n)?;
        let (services, instances, endpoints) = (dict(cols::SERVICE)?, dict(cols::INSTANCE)?, dict(cols::ENDPOINT)?);
        let (messages, ips, users) = (dict(cols::ERROR_MESSAGE)?, dict(cols::CLIENT_IP)?, dict(cols::USER_ID)?);
        let (agents, referers) = (dict(cols::USER_AGENT)?, dict(cols::REFERER)?);
        let ends = col::decode_delta(&self.fixed(cols::END)?, n)?;
        let errors = col::decode_u8(&self.fixed(cols::ERROR)?, n)?;
        let [elapsed, status, cpu, alloc, sql_count, sql_ns, api_count, api_ns] = [
            cols::ELAPSED,
            cols::HTTP_STATUS,
            cols::CPU,
            cols::ALLOC,
            cols::SQL_COUNT,
            cols::SQL_NS,
            cols::API_COUNT,
            cols::API_NS,
        ]
        .map(|c| self.varints(c));
        let (elapsed, status, cpu, alloc) = (elapsed?, status?, cpu?, alloc?);
        let (sql_count, sql_ns, api_count, api_ns) = (sql_count?, sql_ns?, api_count?, api_ns?);
        let mut attrs: Vec<(&str, Vec<Option<Value>>)> = Vec::new();
        for (i, key) in self.meta.attr_keys.iter().enumerate() {
            if let Some(b) = self.body(cols::ATTR_BASE + i as u16)? {
                attrs.push((key.as_str(), col::decode_values(&b, n)?));
            }
        }
        let u32_of = |v: u64| u32::try_from(v).map_err(|_| corrupt("xlog u32 column"));
        let resources = self.resources()?;
        let resource_idx = self.resource_index()?;
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
                attributes: attrs.iter_mut().filter_map(|(k, v)| v[r].take().map(|v| (k.to_string(), v))).collect(),
                resource: resources[resource_idx[r]].clone(),
            });
        }
        Ok(out)
    }
}

/// Every column of a segment's pages, fixed and attribute, and the resource table.
pub fn all_columns(meta: &XSegmentMeta) -> Vec<u16> {
    (0..=cols::RESOURCE_TABLE).chain((0..meta.attr_keys.len() as u16).map(|i| cols::ATTR_BASE + i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::arb_xlog;
    use proptest::prelude::*;

    pub fn fetch_from(chunks: &[(u16, u32, Vec<u8>)]) -> impl Fn(&[(u16, u32)]) -> Fetched + '_ {
        let map: std::collections::HashMap<(u16, u32), &Vec<u8>> =
            chunks.iter().map(|(c, p, b)| ((*c, *p), b)).collect();
        move |want| Ok(want.iter().map(|k| map.get(k).map(|b| b.to_vec())).collect())
    }

    /// How a record reads back: attributes in column order.
    fn stored_form(x: &XLog, keys: &[String]) -> XLog {
        let mut y = x.clone();
        y.attributes = keys.iter().filter_map(|k| x.attributes.iter().find(|(a, _)| a == k).cloned()).collect();
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn xlog_segments_round_trip(batch in proptest::collection::vec(arb_xlog().prop_map(unique_keys), 1..60)) {
            let refs: Vec<&XLog> = batch.iter().collect();
            let built = build(3, &mut || 9, &refs).remove(0);
            let fetch = fetch_from(&built.chunks);
            let mut back = Vec::new();
            for p in 0..built.meta.pages() {
                let page = Page::fetch(&built.meta, p, &all_columns(&built.meta), &fetch).unwrap();
                back.extend(page.records(&(0..page.rows).collect::<Vec<_>>()).unwrap());
            }
            let mut expect: Vec<XLog> = batch.iter().map(|x| stored_form(x, &built.meta.attr_keys)).collect();
            expect.sort_by_key(|x| (x.end_ns(), x.trace_id, x.span_id));
            prop_assert_eq!(back, expect);
        }
    }
}
