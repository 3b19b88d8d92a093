//! Zipkin's protobuf model (`zipkin.proto3`, `ListOfSpans`: what Brave, zipkin-go and py_zipkin
//! send with `Content-Type: application/x-protobuf`), read into the JSON model's `ZSpan` so that
//! both take one translation. Ids are bytes here, hex there; IPs are 4 or 16 bytes here, text
//! there; zero means absent for the timestamp, the duration, the kind and the port.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use prost::Message;

use super::{Annotation as ZAnnotation, Endpoint as ZEndpoint, ZSpan};

#[derive(Clone, PartialEq, Message)]
pub struct ListOfSpans {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Span {
    /// 8 or 16 bytes, big-endian.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    /// SPAN_KIND_UNSPECIFIED, CLIENT, SERVER, PRODUCER, CONSUMER.
    #[prost(int32, tag = "4")]
    pub kind: i32,
    #[prost(string, tag = "5")]
    pub name: String,
    /// Microseconds since the Unix epoch.
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Microseconds.
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<Endpoint>,
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<Endpoint>,
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<Annotation>,
    #[prost(map = "string, string", tag = "11")]
    pub tags: HashMap<String, String>,
    #[prost(bool, tag = "12")]
    pub debug: bool,
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Endpoint {
    #[prost(string, tag = "1")]
    pub service_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub port: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Annotation {
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// What a span costs in memory between the wire and the OTLP request: its prost struct and the
/// JSON model's, beside their strings (which the census counts apart).
pub(crate) const INTERMEDIATE_SPAN_BYTES: usize = std::mem::size_of::<Span>() + std::mem::size_of::<ZSpan>();

/// The spans of a `ListOfSpans`, in the JSON model. A message that is not one, or a span with an
/// id, an IP, a kind or a port out of its range, refuses the request, as a malformed JSON body
/// does.
pub(super) fn spans(body: &[u8]) -> Result<Vec<ZSpan>, String> {
    let list = ListOfSpans::decode(body).map_err(|e| format!("not a Zipkin ListOfSpans in protobuf: {e}"))?;
    list.spans.into_iter().enumerate().map(|(i, s)| span(i, s)).collect()
}

fn id(i: usize, what: &str, bytes: &[u8], sizes: &[usize]) -> Result<String, String> {
    if !sizes.contains(&bytes.len()) {
        let sizes: Vec<String> = sizes.iter().map(|n| n.to_string()).collect();
        return Err(format!("span {i}: {what} is {} bytes, not {}", bytes.len(), sizes.join(" or ")));
    }
    Ok(hex::encode(bytes))
}

fn endpoint(i: usize, e: Endpoint) -> Result<ZEndpoint, String> {
    let ipv4 = match e.ipv4.len() {
        0 => None,
        4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(e.ipv4.as_slice()).expect("4 bytes")).to_string()),
        n => return Err(format!("span {i}: an endpoint's ipv4 is {n} bytes, not 4")),
    };
    let ipv6 = match e.ipv6.len() {
        0 => None,
        16 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(e.ipv6.as_slice()).expect("16 bytes")).to_string()),
        n => return Err(format!("span {i}: an endpoint's ipv6 is {n} bytes, not 16")),
    };
    let port = match e.port {
        0 => None,
        p => Some(u16::try_from(p).map_err(|_| format!("span {i}: port {p} is not 1 to 65535"))?),
    };
    Ok(ZEndpoint { service_name: Some(e.service_name).filter(|s| !s.is_empty()), ipv4, ipv6, port })
}

fn span(i: usize, s: Span) -> Result<ZSpan, String> {
    let kind = match s.kind {
        0 => None,
        1 => Some("CLIENT"),
        2 => Some("SERVER"),
        3 => Some("PRODUCER"),
        4 => Some("CONSUMER"),
        k => return Err(format!("span {i}: unknown kind {k}")),
    };
    Ok(ZSpan {
        trace_id: id(i, "trace_id", &s.trace_id, &[8, 16])?,
        id: id(i, "id", &s.id, &[8])?,
        parent_id: if s.parent_id.is_empty() { None } else { Some(id(i, "parent_id", &s.parent_id, &[8])?) },
        name: Some(s.name),
        kind: kind.map(String::from),
        timestamp: Some(s.timestamp).filter(|t| *t != 0),
        duration: Some(s.duration).filter(|d| *d != 0),
        shared: Some(s.shared),
        local_endpoint: s.local_endpoint.map(|e| endpoint(i, e)).transpose()?,
        remote_endpoint: s.remote_endpoint.map(|e| endpoint(i, e)).transpose()?,
        annotations: s
            .annotations
            .into_iter()
            .map(|a| ZAnnotation { timestamp: a.timestamp, value: a.value })
            .collect(),
        tags: s.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_of(f: impl FnOnce(&mut Span)) -> Vec<u8> {
        let mut s = Span {
            trace_id: vec![0x46; 16],
            id: vec![0xa2; 8],
            kind: 1,
            name: "get /api".into(),
            timestamp: 1_700_000_000_000_000,
            duration: 2_000,
            local_endpoint: Some(Endpoint {
                service_name: "frontend".into(),
                ipv4: vec![10, 0, 0, 1],
                ..Default::default()
            }),
            remote_endpoint: Some(Endpoint {
                service_name: "backend".into(),
                ipv6: vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                port: 8080,
                ..Default::default()
            }),
            annotations: vec![Annotation { timestamp: 1_700_000_000_000_100, value: "ws".into() }],
            tags: [("http.path".to_string(), "/api".to_string()), ("error".into(), "boom".into())].into(),
            ..Default::default()
        };
        f(&mut s);
        ListOfSpans { spans: vec![s] }.encode_to_vec()
    }

    #[test]
    fn protobuf_spans_translate_as_their_json_twins_do() {
        let req = super::super::from_protobuf(&span_of(|_| {})).unwrap();
        let json = super::super::from_json(
            br#"[{"traceId":"46464646464646464646464646464646","id":"a2a2a2a2a2a2a2a2","kind":"CLIENT",
                "name":"get /api","timestamp":1700000000000000,"duration":2000,
                "localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1"},
                "remoteEndpoint":{"serviceName":"backend","ipv6":"2001:db8::1","port":8080},
                "annotations":[{"timestamp":1700000000000100,"value":"ws"}],
                "tags":{"http.path":"/api","error":"boom"}}]"#,
        )
        .unwrap();
        assert_eq!(req, json);
    }

    #[test]
    fn out_of_range_fields_refuse_the_request_with_the_reason() {
        for (body, says) in [
            (span_of(|s| s.trace_id = vec![1; 12]), "trace_id is 12 bytes, not 8 or 16"),
            (span_of(|s| s.id.clear()), "id is 0 bytes"),
            (span_of(|s| s.parent_id = vec![1; 16]), "parent_id is 16 bytes"),
            (span_of(|s| s.kind = 9), "unknown kind 9"),
            (span_of(|s| s.timestamp = 0), "no timestamp"),
            (span_of(|s| s.local_endpoint.as_mut().unwrap().ipv4 = vec![1, 2, 3]), "ipv4 is 3 bytes"),
            (span_of(|s| s.remote_endpoint.as_mut().unwrap().port = 70_000), "port 70000"),
            (b"\x0a\x05\x0a\x10".to_vec(), "not a Zipkin ListOfSpans"),
        ] {
            let e = super::super::from_protobuf(&body).unwrap_err();
            assert!(e.contains(says), "{says}: {e}");
        }
        // A 64-bit trace id is left-padded, as in JSON.
        let req = super::super::from_protobuf(&span_of(|s| s.trace_id = vec![7; 8])).unwrap();
        assert_eq!(req.resource_spans[0].scope_spans[0].spans[0].trace_id[..8], [0; 8]);
    }
}
