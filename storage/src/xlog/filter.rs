//! Which transactions a read wants (`XLogFilter`), and the test of a record or of a whole page
//! against it: columns decoded once per page, dictionary codes matched once per page rather than
//! per row, a resource attribute matched once per resource of the segment.

use std::borrow::Cow;

use super::segment::{cols, XLogSegmentMeta, XPage};
use super::XLog;
use crate::codec::column as col;
use crate::error::StorageError;
use crate::model::{TraceId, Value};
use crate::table::SegmentMeta;

/// A time a transaction spends besides its elapsed time: the scatter's other Y axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Sql,
    Api,
    Cpu,
}

impl Metric {
    fn of(self, x: &XLog) -> u64 {
        match self {
            Metric::Sql => x.sql_ns,
            Metric::Api => x.api_ns,
            Metric::Cpu => x.cpu_ns,
        }
    }

    fn column(self) -> u16 {
        match self {
            Metric::Sql => cols::SQL_NS,
            Metric::Api => cols::API_NS,
            Metric::Cpu => cols::CPU,
        }
    }
}

/// Which transactions: end time in `[from_ns, to_ns)` and every filter given.
#[derive(Debug, Clone, Default)]
pub struct XLogFilter {
    pub from_ns: u64,
    pub to_ns: u64,
    pub service: Option<String>,
    pub endpoint: Option<String>,
    pub min_elapsed_ns: Option<u64>,
    pub max_elapsed_ns: Option<u64>,
    pub error: Option<bool>,
    pub client_ip: Option<String>,
    pub user_id: Option<String>,
    /// Substring of the user agent.
    pub user_agent: Option<String>,
    /// Substring of the endpoint or the error message.
    pub text: Option<String>,
    pub trace_id: Option<TraceId>,
    /// Attribute (or resource attribute) equal to the value, in its text form.
    pub attributes: Vec<(String, String)>,
    /// SQL, API or CPU time within `[lo, hi]` nanoseconds.
    pub times: Vec<(Metric, u64, u64)>,
    /// The most recent this many matches are kept.
    pub limit: usize,
}

/// An attribute value as text, the form filters compare with.
pub fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Str(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Owned(b.to_string()),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Double(d) => Cow::Owned(d.to_string()),
        Value::Empty => Cow::Borrowed(""),
        Value::Bytes(b) => Cow::Owned(hex::encode(b)),
        Value::Array(_) | Value::KvList(_) => Cow::Owned(format!("{v:?}")),
    }
}

impl XLogFilter {
    pub fn matches(&self, x: &XLog) -> bool {
        let end = x.end_ns();
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        end >= self.from_ns
            && end < self.to_ns
            && eq(&self.service, &x.service)
            && eq(&self.endpoint, &x.endpoint)
            && self.min_elapsed_ns.is_none_or(|m| x.elapsed_ns >= m)
            && self.max_elapsed_ns.is_none_or(|m| x.elapsed_ns <= m)
            && self.error.is_none_or(|e| e == x.error)
            && eq(&self.client_ip, &x.client_ip)
            && eq(&self.user_id, &x.user_id)
            && self.user_agent.as_deref().is_none_or(|u| x.user_agent.contains(u))
            && self.text.as_deref().is_none_or(|t| x.endpoint.contains(t) || x.error_message.contains(t))
            && self.trace_id.is_none_or(|t| t == x.trace_id)
            && self.times.iter().all(|(m, lo, hi)| (*lo..=*hi).contains(&m.of(x)))
            && self.attributes.iter().all(|(k, v)| x.attribute(k).is_some_and(|a| value_text(a) == v.as_str()))
    }

    pub(super) fn may_match_segment(&self, m: &XLogSegmentMeta) -> bool {
        m.max_end_ns >= self.from_ns
            && m.min_end_ns < self.to_ns
            && self.service.as_ref().is_none_or(|s| m.may_hold_service(s))
            && self.attributes.iter().all(|(k, _)| m.attr_column(k).is_some() || m.has_resource_key(k))
    }

    /// Columns a page must have to evaluate the filter.
    pub(super) fn columns(&self, meta: &XLogSegmentMeta) -> Vec<u16> {
        let mut c = vec![cols::END, cols::TRACE_ID, cols::SPAN_ID];
        let mut add = |on: bool, col: u16| {
            if on && !c.contains(&col) {
                c.push(col);
            }
        };
        add(self.service.is_some(), cols::SERVICE);
        add(self.endpoint.is_some() || self.text.is_some(), cols::ENDPOINT);
        add(self.text.is_some(), cols::ERROR_MESSAGE);
        add(self.min_elapsed_ns.is_some() || self.max_elapsed_ns.is_some(), cols::ELAPSED);
        add(self.error.is_some(), cols::ERROR);
        add(self.client_ip.is_some(), cols::CLIENT_IP);
        add(self.user_id.is_some(), cols::USER_ID);
        add(self.user_agent.is_some(), cols::USER_AGENT);
        for (m, _, _) in &self.times {
            add(true, m.column());
        }
        for (k, _) in &self.attributes {
            if let Some(a) = meta.attr_column(k) {
                add(true, a);
            }
            if meta.has_resource_key(k) {
                add(true, cols::RESOURCE);
                add(true, cols::RESOURCE_TABLE);
            }
        }
        c
    }

    /// Rows of the page that pass the filter, and the page's end times (decoded for the time
    /// window; the callers need them too).
    pub(super) fn page_matches(&self, page: &XPage<'_>) -> Result<(Vec<usize>, Vec<u64>), StorageError> {
        let n = page.rows;
        let ends = col::decode_delta(&page.fixed(cols::END)?, n)?;
        let mut keep: Vec<bool> = ends.iter().map(|e| *e >= self.from_ns && *e < self.to_ns).collect();
        if self.min_elapsed_ns.is_some() || self.max_elapsed_ns.is_some() {
            let (lo, hi) = (self.min_elapsed_ns.unwrap_or(0), self.max_elapsed_ns.unwrap_or(u64::MAX));
            for (k, e) in keep.iter_mut().zip(page.varints(cols::ELAPSED)?) {
                *k &= e >= lo && e <= hi;
            }
        }
        for (m, lo, hi) in &self.times {
            for (k, v) in keep.iter_mut().zip(page.varints(m.column())?) {
                *k &= (*lo..=*hi).contains(&v);
            }
        }
        if let Some(want) = self.error {
            for (k, e) in keep.iter_mut().zip(col::decode_u8(&page.fixed(cols::ERROR)?, n)?) {
                *k &= (e != 0) == want;
            }
        }
        let strings: [(u16, Option<&str>, bool); 5] = [
            (cols::SERVICE, self.service.as_deref(), false),
            (cols::ENDPOINT, self.endpoint.as_deref(), false),
            (cols::CLIENT_IP, self.client_ip.as_deref(), false),
            (cols::USER_ID, self.user_id.as_deref(), false),
            (cols::USER_AGENT, self.user_agent.as_deref(), true),
        ];
        for (c, want, substring) in strings {
            if let Some(w) = want {
                dict_filter(page, c, &mut keep, |s| if substring { s.contains(w) } else { s == w })?;
            }
        }
        if let Some(t) = &self.text {
            let body = page.fixed(cols::ENDPOINT)?;
            let (dict, endpoint) = col::decode_dict_codes(&body, n)?;
            let in_endpoint: Vec<bool> = dict.iter().map(|s| s.contains(t.as_str())).collect();
            let body = page.fixed(cols::ERROR_MESSAGE)?;
            let (dict, message) = col::decode_dict_codes(&body, n)?;
            let in_message: Vec<bool> = dict.iter().map(|s| s.contains(t.as_str())).collect();
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= in_endpoint[endpoint[i] as usize] || in_message[message[i] as usize];
            }
        }
        for (key, want) in &self.attributes {
            // The record's own attribute wins; without one, its resource's counts.
            let by_resource: Option<(Vec<bool>, Vec<usize>)> = if page.meta.has_resource_key(key) {
                let ok = page
                    .resources()?
                    .iter()
                    .map(|r| r.get(key).is_some_and(|v| value_text(v) == want.as_str()))
                    .collect();
                Some((ok, page.resource_index()?))
            } else {
                None
            };
            let own = match page.meta.attr_column(key) {
                Some(c) => page.body(c)?.map(|b| col::decode_values(&b, n)).transpose()?,
                None => None,
            };
            for (i, k) in keep.iter_mut().enumerate() {
                *k &= match own.as_ref().and_then(|v| v[i].as_ref()) {
                    Some(v) => value_text(v) == want.as_str(),
                    None => by_resource.as_ref().is_some_and(|(ok, idx)| ok[idx[i]]),
                };
            }
        }
        if let Some(t) = &self.trace_id {
            for (k, id) in keep.iter_mut().zip(col::decode_trace_ids(&page.fixed(cols::TRACE_ID)?, n)?) {
                *k &= id == *t;
            }
        }
        Ok((keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect(), ends))
    }
}

fn dict_filter(page: &XPage<'_>, c: u16, keep: &mut [bool], pred: impl Fn(&str) -> bool) -> Result<(), StorageError> {
    for (k, ok) in keep.iter_mut().zip(page.dict_matches(c, pred)?) {
        *k &= ok;
    }
    Ok(())
}
