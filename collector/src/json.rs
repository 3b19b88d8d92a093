//! OTLP/JSON → the protobuf request types. Follows the OTLP JSON encoding: lowerCamelCase keys
//! (snake_case accepted too), hex trace and span ids, integer enums (their names accepted too),
//! 64-bit integers as strings or numbers, bytes values as base64. Unknown fields are ignored.

use base64::Engine as _;
use rewind_agent_proto::otlp::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use rewind_agent_proto::otlp::resource::v1::Resource;
use rewind_agent_proto::otlp::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use rewind_agent_proto::ExportTraceServiceRequest;
use serde_json::{Map, Value as J};

type R<T> = Result<T, String>;

pub fn decode(body: &[u8]) -> R<ExportTraceServiceRequest> {
    let v: J = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let root = obj(&v, "request")?;
    Ok(ExportTraceServiceRequest {
        resource_spans: list(root, "resourceSpans", "resource_spans", "resourceSpans", resource_spans)?,
    })
}

fn field<'a>(o: &'a Map<String, J>, camel: &str, snake: &str) -> Option<&'a J> {
    o.get(camel).or_else(|| o.get(snake)).filter(|v| !v.is_null())
}

fn obj<'a>(v: &'a J, path: &str) -> R<&'a Map<String, J>> {
    v.as_object().ok_or_else(|| format!("{path}: expected an object"))
}

fn list<T>(o: &Map<String, J>, camel: &str, snake: &str, path: &str, f: impl Fn(&J, &str) -> R<T>) -> R<Vec<T>> {
    match field(o, camel, snake) {
        None => Ok(Vec::new()),
        Some(J::Array(items)) => items.iter().enumerate().map(|(i, v)| f(v, &format!("{path}[{i}]"))).collect(),
        Some(_) => Err(format!("{path}: expected an array")),
    }
}

fn string(o: &Map<String, J>, camel: &str, snake: &str, path: &str) -> R<String> {
    match field(o, camel, snake) {
        None => Ok(String::new()),
        Some(J::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{path}.{camel}: expected a string")),
    }
}

fn u64_field(o: &Map<String, J>, camel: &str, snake: &str, path: &str) -> R<u64> {
    match field(o, camel, snake) {
        None => Ok(0),
        Some(J::Number(n)) => n.as_u64().ok_or_else(|| format!("{path}.{camel}: expected an unsigned integer")),
        Some(J::String(s)) => s.parse().map_err(|_| format!("{path}.{camel}: expected an unsigned integer")),
        Some(_) => Err(format!("{path}.{camel}: expected an unsigned integer")),
    }
}

fn u32_field(o: &Map<String, J>, camel: &str, snake: &str, path: &str) -> R<u32> {
    u32::try_from(u64_field(o, camel, snake, path)?).map_err(|_| format!("{path}.{camel}: out of range"))
}

fn enum_field(o: &Map<String, J>, camel: &str, names: &[&str], path: &str) -> R<i32> {
    match field(o, camel, camel) {
        None => Ok(0),
        Some(J::Number(n)) => {
            n.as_i64().and_then(|v| i32::try_from(v).ok()).ok_or_else(|| format!("{path}.{camel}: expected an integer"))
        }
        Some(J::String(s)) => names
            .iter()
            .position(|n| n == s)
            .map(|i| i as i32)
            .ok_or_else(|| format!("{path}.{camel}: unknown value {s:?}")),
        Some(_) => Err(format!("{path}.{camel}: expected an integer")),
    }
}

/// Hex ids. An id that is not hex decodes to no bytes: the span is then rejected on its own
/// (partial success) instead of failing the whole request.
fn id(o: &Map<String, J>, camel: &str, snake: &str) -> Vec<u8> {
    match field(o, camel, snake) {
        Some(J::String(s)) => hex::decode(s).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn resource_spans(v: &J, path: &str) -> R<ResourceSpans> {
    let o = obj(v, path)?;
    let resource = match field(o, "resource", "resource") {
        None => None,
        Some(r) => {
            let r = obj(r, path)?;
            Some(Resource {
                attributes: list(r, "attributes", "attributes", &format!("{path}.resource.attributes"), key_value)?,
                dropped_attributes_count: u32_field(r, "droppedAttributesCount", "dropped_attributes_count", path)?,
                ..Default::default()
            })
        }
    };
    Ok(ResourceSpans {
        resource,
        scope_spans: list(o, "scopeSpans", "scope_spans", &format!("{path}.scopeSpans"), scope_spans)?,
        schema_url: string(o, "schemaUrl", "schema_url", path)?,
    })
}

fn scope_spans(v: &J, path: &str) -> R<ScopeSpans> {
    let o = obj(v, path)?;
    let scope = match field(o, "scope", "scope") {
        None => None,
        Some(s) => {
            let s = obj(s, path)?;
            Some(InstrumentationScope {
                name: string(s, "name", "name", path)?,
                version: string(s, "version", "version", path)?,
                attributes: list(s, "attributes", "attributes", &format!("{path}.scope.attributes"), key_value)?,
                dropped_attributes_count: u32_field(s, "droppedAttributesCount", "dropped_attributes_count", path)?,
            })
        }
    };
    Ok(ScopeSpans {
        scope,
        spans: list(o, "spans", "spans", &format!("{path}.spans"), span)?,
        schema_url: string(o, "schemaUrl", "schema_url", path)?,
    })
}

const KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: &[&str] = &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

fn span(v: &J, path: &str) -> R<Span> {
    let o = obj(v, path)?;
    let status = match field(o, "status", "status") {
        None => None,
        Some(s) => {
            let s = obj(s, path)?;
            Some(Status {
                message: string(s, "message", "message", path)?,
                code: enum_field(s, "code", STATUS_CODES, &format!("{path}.status"))?,
            })
        }
    };
    Ok(Span {
        trace_id: id(o, "traceId", "trace_id"),
        span_id: id(o, "spanId", "span_id"),
        trace_state: string(o, "traceState", "trace_state", path)?,
        parent_span_id: id(o, "parentSpanId", "parent_span_id"),
        flags: u32_field(o, "flags", "flags", path)?,
        name: string(o, "name", "name", path)?,
        kind: enum_field(o, "kind", KINDS, path)?,
        start_time_unix_nano: u64_field(o, "startTimeUnixNano", "start_time_unix_nano", path)?,
        end_time_unix_nano: u64_field(o, "endTimeUnixNano", "end_time_unix_nano", path)?,
        attributes: list(o, "attributes", "attributes", &format!("{path}.attributes"), key_value)?,
        dropped_attributes_count: u32_field(o, "droppedAttributesCount", "dropped_attributes_count", path)?,
        events: list(o, "events", "events", &format!("{path}.events"), event)?,
        dropped_events_count: u32_field(o, "droppedEventsCount", "dropped_events_count", path)?,
        links: list(o, "links", "links", &format!("{path}.links"), link)?,
        dropped_links_count: u32_field(o, "droppedLinksCount", "dropped_links_count", path)?,
        status,
    })
}

fn event(v: &J, path: &str) -> R<span::Event> {
    let o = obj(v, path)?;
    Ok(span::Event {
        time_unix_nano: u64_field(o, "timeUnixNano", "time_unix_nano", path)?,
        name: string(o, "name", "name", path)?,
        attributes: list(o, "attributes", "attributes", &format!("{path}.attributes"), key_value)?,
        dropped_attributes_count: u32_field(o, "droppedAttributesCount", "dropped_attributes_count", path)?,
    })
}

fn link(v: &J, path: &str) -> R<span::Link> {
    let o = obj(v, path)?;
    Ok(span::Link {
        trace_id: id(o, "traceId", "trace_id"),
        span_id: id(o, "spanId", "span_id"),
        trace_state: string(o, "traceState", "trace_state", path)?,
        attributes: list(o, "attributes", "attributes", &format!("{path}.attributes"), key_value)?,
        dropped_attributes_count: u32_field(o, "droppedAttributesCount", "dropped_attributes_count", path)?,
        flags: u32_field(o, "flags", "flags", path)?,
    })
}

// Nesting needs no limit of its own: serde_json refuses input nested deeper than 128.
fn key_value(v: &J, path: &str) -> R<KeyValue> {
    let o = obj(v, path)?;
    Ok(KeyValue {
        key: string(o, "key", "key", path)?,
        value: field(o, "value", "value").map(|v| any_value(v, &format!("{path}.value"))).transpose()?,
    })
}

fn any_value(v: &J, path: &str) -> R<AnyValue> {
    let o = obj(v, path)?;
    let bad = |what: &str| format!("{path}: expected {what}");
    let value = if let Some(s) = field(o, "stringValue", "string_value") {
        any_value::Value::StringValue(s.as_str().ok_or_else(|| bad("a string"))?.to_owned())
    } else if let Some(b) = field(o, "boolValue", "bool_value") {
        any_value::Value::BoolValue(b.as_bool().ok_or_else(|| bad("a boolean"))?)
    } else if let Some(i) = field(o, "intValue", "int_value") {
        let i = match i {
            J::Number(n) => n.as_i64(),
            J::String(s) => s.parse().ok(),
            _ => None,
        };
        any_value::Value::IntValue(i.ok_or_else(|| bad("a 64-bit integer"))?)
    } else if let Some(d) = field(o, "doubleValue", "double_value") {
        let d = match d {
            J::Number(n) => n.as_f64(),
            // Proto3 JSON spells the special values as strings.
            J::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
            _ => None,
        };
        any_value::Value::DoubleValue(d.ok_or_else(|| bad("a number"))?)
    } else if let Some(b) = field(o, "bytesValue", "bytes_value") {
        let s = b.as_str().ok_or_else(|| bad("base64 bytes"))?;
        any_value::Value::BytesValue(
            base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| bad("base64 bytes"))?,
        )
    } else if let Some(a) = field(o, "arrayValue", "array_value") {
        let a = obj(a, path)?;
        let values = match field(a, "values", "values") {
            None => Vec::new(),
            Some(J::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| any_value(v, &format!("{path}[{i}]"))).collect::<R<_>>()?
            }
            Some(_) => return Err(bad("an array of values")),
        };
        any_value::Value::ArrayValue(ArrayValue { values })
    } else if let Some(l) = field(o, "kvlistValue", "kvlist_value") {
        let l = obj(l, path)?;
        let values = match field(l, "values", "values") {
            None => Vec::new(),
            Some(J::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| key_value(v, &format!("{path}[{i}]"))).collect::<R<_>>()?
            }
            Some(_) => return Err(bad("an array of key-values")),
        };
        any_value::Value::KvlistValue(KeyValueList { values })
    } else {
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_otlp_json_example() {
        let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
          "scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0"},
          "spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"EEE19B7EC3C1B173",
            "name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,"kind":2,
            "attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}},{"key":"n","value":{"intValue":"-7"}},
              {"key":"d","value":{"doubleValue":"NaN"}},{"key":"b","value":{"bytesValue":"aGk="}},
              {"key":"a","value":{"arrayValue":{"values":[{"boolValue":true},{"kvlistValue":{"values":[{"key":"x","value":{"intValue":3}}]}}]}}}],
            "status":{"code":"STATUS_CODE_ERROR","message":"x"},
            "events":[{"timeUnixNano":"1544712660500000000","name":"exception"}]}]}]}]}"#;
        let req = decode(body).unwrap();
        let s = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex::encode(&s.trace_id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.parent_span_id.len(), 8);
        assert_eq!(
            (s.start_time_unix_nano, s.end_time_unix_nano, s.kind),
            (1544712660000000000, 1544712661000000000, 2)
        );
        assert_eq!(s.status.as_ref().unwrap().code, 2);
        assert_eq!(s.attributes[1].value.as_ref().unwrap().value, Some(any_value::Value::IntValue(-7)));
        assert_eq!(s.attributes[3].value.as_ref().unwrap().value, Some(any_value::Value::BytesValue(b"hi".to_vec())));
        assert_eq!(s.events[0].name, "exception");
    }

    #[test]
    fn malformed_json_is_a_clear_error() {
        assert!(decode(b"{not json").unwrap_err().contains("invalid JSON"));
        assert!(decode(b"[]").unwrap_err().contains("expected an object"));
        let e =
            decode(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#).unwrap_err();
        assert!(e.contains("resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"), "{e}");
    }

    #[test]
    fn bad_hex_ids_leave_the_span_to_be_rejected_alone() {
        let req = decode(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz","spanId":"0102030405060708"}]}]}]}"#,
        )
        .unwrap();
        assert!(req.resource_spans[0].scope_spans[0].spans[0].trace_id.is_empty());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut v = String::from(r#"{"intValue":1}"#);
        for _ in 0..70 {
            v = format!(r#"{{"arrayValue":{{"values":[{v}]}}}}"#);
        }
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":[{{"key":"k","value":{v}}}]}}]}}]}}]}}"#
        );
        let e = decode(body.as_bytes()).unwrap_err();
        assert!(e.contains("recursion limit"), "{e}");
    }
}
