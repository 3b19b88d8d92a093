//! Native agent protocol (`rewind.agent.v1.XLogService/Export`) → validated store records, with
//! the same rules as OTLP spans: a bad record is rejected on its own, content past the limits is
//! cut.

use std::sync::Arc;

use rewind_agent_proto::agent::{attribute, ExportXLogRequest, XLog as WireXLog};
use rewind_storage::{AttributeKeys, KeyValue, Resource, SpanId, TraceId, Value, XLog};

use crate::convert::{unique_kvs, wire_id, Converted, Cx, Limits, MAX_DURATION_NS};

pub fn convert(
    req: ExportXLogRequest,
    limits: &Limits,
    keys: &AttributeKeys,
    now_ns: u64,
    min_start_ns: u64,
) -> Converted<XLog> {
    let mut out = Converted::new("record");
    let mut cx = Cx::new(limits, keys);
    // One empty resource shared by every native record.
    let resource = Arc::new(Resource::default());
    for r in req.records {
        match record(&mut cx, r, &resource, now_ns, min_start_ns) {
            Ok(x) => out.items.push(x),
            Err(reason) => out.reject(reason),
        }
    }
    out.truncated = cx.truncated;
    out
}

fn record(
    cx: &mut Cx<'_>,
    r: WireXLog,
    resource: &Arc<Resource>,
    now_ns: u64,
    min_start_ns: u64,
) -> Result<XLog, String> {
    let trace_id = wire_id(TraceId::from_wire, &r.trace_id, "trace_id")?;
    let span_id = wire_id(SpanId::from_wire, &r.span_id, "span_id")?;
    if r.service.is_empty() {
        return Err("service is missing".into());
    }
    if r.start_time_unix_nano == 0 {
        return Err("start_time_unix_nano is missing".into());
    }
    cx.check_start(r.start_time_unix_nano, now_ns, min_start_ns)?;
    if r.elapsed_nano > MAX_DURATION_NS {
        return Err("elapsed_nano is longer than 7 days".into());
    }
    Ok(XLog {
        trace_id,
        span_id,
        service: cx.name(&r.service),
        instance: cx.text(&r.instance),
        endpoint: cx.text(&r.endpoint),
        start_ns: r.start_time_unix_nano,
        elapsed_ns: r.elapsed_nano,
        error: r.error,
        error_message: cx.text(&r.error_message),
        http_status: r.http_status,
        client_ip: cx.text(&r.client_ip),
        user_id: cx.text(&r.user_id),
        user_agent: cx.text(&r.user_agent),
        referer: cx.text(&r.referer),
        cpu_ns: r.cpu_time_nano,
        alloc_bytes: r.allocated_bytes,
        sql_count: r.sql_count,
        sql_ns: r.sql_time_nano,
        api_count: r.api_count,
        api_ns: r.api_time_nano,
        attributes: attributes(cx, r.attributes).into(),
        resource: resource.clone(),
    })
}

/// The agent's attributes, by the rules spans' follow (`unique_kvs`).
fn attributes(cx: &mut Cx<'_>, attrs: Vec<rewind_agent_proto::agent::Attribute>) -> Vec<KeyValue> {
    let max = cx.limits.max_attributes;
    let mut refused = 0u32;
    let (out, dropped) = unique_kvs(
        max,
        attrs.into_iter().filter_map(|a| {
            let Some(key) = cx.column_key(&a.key) else {
                refused += 1;
                return None;
            };
            let value = match a.value {
                Some(attribute::Value::StringValue(s)) => Value::Str(cx.text(&s)),
                Some(attribute::Value::IntValue(i)) => Value::Int(i),
                Some(attribute::Value::DoubleValue(d)) => Value::Double(d),
                Some(attribute::Value::BoolValue(b)) => Value::Bool(b),
                None => Value::Empty,
            };
            Some((key, value))
        }),
    );
    if dropped > 0 || refused > 0 {
        cx.truncated += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewind_agent_proto::agent::Attribute;

    const NOW: u64 = 1_750_000_000_000_000_000;

    fn good() -> WireXLog {
        WireXLog {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            service: "billing".into(),
            endpoint: "/pay".into(),
            start_time_unix_nano: NOW - 1_000_000,
            elapsed_nano: 500_000,
            sql_count: 3,
            attributes: vec![
                Attribute { key: "tier".into(), value: Some(attribute::Value::StringValue("gold".into())) },
                Attribute { key: "tier".into(), value: Some(attribute::Value::StringValue("silver".into())) },
                Attribute { key: "n".into(), value: Some(attribute::Value::IntValue(7)) },
            ],
            ..WireXLog::default()
        }
    }

    #[test]
    fn good_records_convert_and_bad_ones_are_rejected_one_by_one() {
        type Spoil = fn(&mut WireXLog);
        let bad: Vec<(Spoil, &str)> = vec![
            (|r| r.trace_id = vec![0; 16], "trace_id is all zeros"),
            (|r| r.span_id = vec![1; 4], "span_id must be 8 bytes"),
            (|r| r.service.clear(), "service is missing"),
            (|r| r.start_time_unix_nano = 0, "start_time_unix_nano is missing"),
            (|r| r.start_time_unix_nano = NOW + 2 * 3_600_000_000_000, "too far in the future"),
            (|r| r.start_time_unix_nano = 5, "older than the retention period"),
            (|r| r.elapsed_nano = u64::MAX, "longer than 7 days"),
        ];
        for (spoil, reason) in bad {
            let mut r = good();
            spoil(&mut r);
            let c = convert(
                ExportXLogRequest { records: vec![good(), r] },
                &Limits::default(),
                &AttributeKeys::default(),
                NOW,
                1_000,
            );
            assert_eq!((c.items.len(), c.rejected), (1, 1), "{reason}");
            assert!(c.message().contains(reason), "{}", c.message());
            assert!(c.message().starts_with("rejected 1 record(s)"), "{}", c.message());
        }
        let c = convert(
            ExportXLogRequest { records: vec![good()] },
            &Limits::default(),
            &AttributeKeys::default(),
            NOW,
            1_000,
        );
        let x = &c.items[0];
        assert_eq!((&*x.service, x.sql_count, x.end_ns()), ("billing", 3, NOW - 500_000));
        assert_eq!(*x.attributes, [("tier".into(), Value::Str("silver".into())), ("n".into(), Value::Int(7))]);
    }

    #[test]
    fn long_strings_and_attribute_floods_are_cut() {
        let mut r = good();
        r.error_message = "x".repeat(100_000);
        r.attributes = (0..1000)
            .map(|i| Attribute { key: format!("k{i}"), value: Some(attribute::Value::BoolValue(true)) })
            .collect();
        let c =
            convert(ExportXLogRequest { records: vec![r] }, &Limits::default(), &AttributeKeys::default(), NOW, 1_000);
        let x = &c.items[0];
        assert_eq!(x.error_message.len(), Limits::default().max_value_bytes);
        assert_eq!(x.attributes.len(), Limits::default().max_attributes);
        assert_eq!(c.truncated, 2);
    }
}
