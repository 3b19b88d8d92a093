//! The OpenTelemetry semantic conventions Rewind reads, old and new names alike (BRIEF.md), and the
//! roles they give a span: an entry (a transaction), an exit to a database or cache, an exit to
//! another service, queue or API, or neither. One place, for derivation, the catalog's virtual
//! nodes and what comes next (the server map's links).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{kind, status, KeyValue, Span, Value};
use crate::xlog::{Attributes, XLog};

pub const DB_SYSTEM: &[&str] = &["db.system.name", "db.system"];
pub const PEER_SERVICE: &[&str] = &["peer.service", "service.peer.name"];
pub const SERVER_ADDRESS: &[&str] = &["server.address", "net.peer.name", "net.sock.peer.addr"];
pub const SERVER_PORT: &[&str] = &["server.port", "net.peer.port", "net.sock.peer.port"];
pub const HTTP_HOST: &[&str] = &["http.host"];
pub const URL: &[&str] = &["url.full", "http.url"];
pub const MESSAGING_SYSTEM: &[&str] = &["messaging.system"];
pub const MESSAGING_DESTINATION: &[&str] = &["messaging.destination.name", "messaging.destination"];
pub const HTTP_STATUS: &[&str] = &["http.response.status_code", "http.status_code"];
pub const CLIENT_ADDRESS: &[&str] = &["client.address", "http.client_ip", "net.peer.ip", "net.sock.peer.addr"];
pub const USER_ID: &[&str] = &["enduser.id", "user.id"];
pub const USER_AGENT: &[&str] = &["user_agent.original", "http.user_agent"];
pub const REFERER: &[&str] = &["http.request.header.referer", "http.referer"];
pub const EXCEPTION_TEXT: &[&str] = &["exception.message", "exception.type"];

/// `db.system` values that are caches rather than databases.
pub const CACHE_SYSTEMS: &[&str] = &["redis", "memcached", "hazelcast", "aerospike", "valkey"];

/// What a node of the map is: an instrumented service, or a virtual node its calls name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    // Order is precedence: a name seen both as an instrumented service and as someone's peer is
    // the service.
    Server,
    Database,
    Cache,
    Queue,
    External,
    User,
}

impl NodeKind {
    pub fn from_u8(v: u8) -> Option<NodeKind> {
        Some(match v {
            0 => NodeKind::Server,
            1 => NodeKind::Database,
            2 => NodeKind::Cache,
            3 => NodeKind::Queue,
            4 => NodeKind::External,
            5 => NodeKind::User,
            _ => return None,
        })
    }
}

/// What a span is to the transaction around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A transaction of its service: SERVER or CONSUMER, or a root.
    Entry,
    /// A CLIENT or PRODUCER call to a database or cache (`db.system` set): counts as sql.
    Database,
    /// Any other CLIENT or PRODUCER call: counts as api.
    Remote,
    Other,
}

/// A transaction, by BRIEF.md: SERVER or CONSUMER, or a root span.
pub fn is_entry(s: &Span) -> bool {
    s.kind == kind::SERVER || s.kind == kind::CONSUMER || s.parent_span_id.is_none()
}

pub fn is_exit(s: &Span) -> bool {
    s.kind == kind::CLIENT || s.kind == kind::PRODUCER
}

pub fn role(s: &Span) -> Role {
    if is_entry(s) {
        Role::Entry
    } else if is_exit(s) {
        if s.attribute_str_any(DB_SYSTEM).is_some() {
            Role::Database
        } else {
            Role::Remote
        }
    } else {
        Role::Other
    }
}

/// The virtual node a client or producer span calls, if its attributes name one. A name taken
/// from an attribute is the value's own shared string: derivation holds one for each call out
/// it waits on, and a copy each was an allocation and a free a span.
pub fn peer_node(span: &Span) -> Option<(Arc<str>, NodeKind)> {
    if !is_exit(span) {
        return None;
    }
    let peer = shared_str_any(span, PEER_SERVICE);
    if let Some(system) = shared_str_any(span, DB_SYSTEM) {
        let k = if CACHE_SYSTEMS.contains(&&**system) { NodeKind::Cache } else { NodeKind::Database };
        let address = shared_str_any(span, SERVER_ADDRESS);
        return Some((peer.or(address).unwrap_or(system).clone(), k));
    }
    if let Some(system) = shared_str_any(span, MESSAGING_SYSTEM) {
        let dest = shared_str_any(span, MESSAGING_DESTINATION);
        return Some((peer.or(dest).unwrap_or(system).clone(), NodeKind::Queue));
    }
    match peer {
        Some(p) => Some((p.clone(), NodeKind::External)),
        None => http_peer(span).map(|name| (name.into(), NodeKind::External)),
    }
}

/// The first of `keys` whose value is a string, as that value's shared string.
fn shared_str_any<'a>(span: &'a Span, keys: &[&str]) -> Option<&'a Arc<str>> {
    keys.iter().find_map(|k| match span.attribute(k)? {
        Value::Str(v) => Some(v),
        _ => None,
    })
}

/// An HTTP or RPC peer as `host[:port]`, from whichever attributes the instrumentation gives:
/// the address and port, the old `http.host`, or the URL. Two services on one host differ by
/// port, so it is kept, except the scheme defaults (80, 443), which a URL leaves out: the same
/// peer gets the same name from old and new instrumentations.
fn http_peer(span: &Span) -> Option<String> {
    let authority = if let Some(host) = span.attribute_str_any(SERVER_ADDRESS) {
        let port = SERVER_PORT.iter().find_map(|k| match span.attribute(k)? {
            Value::Int(p) => Some(p.to_string()),
            Value::Str(p) => Some(p.to_string()),
            _ => None,
        });
        match port {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    } else if let Some(host) = span.attribute_str_any(HTTP_HOST) {
        host.to_owned()
    } else {
        let url = span.attribute_str_any(URL)?;
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next()?;
        authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_owned()
    };
    let name = authority.strip_suffix(":80").or_else(|| authority.strip_suffix(":443")).unwrap_or(&authority);
    (!name.is_empty()).then(|| name.to_owned())
}

/// The queue a CONSUMER span took its message from, if its attributes name one: the same name
/// the producer's `peer_node` gives it.
pub fn consumed_from(span: &Span) -> Option<(Arc<str>, NodeKind)> {
    if span.kind != kind::CONSUMER {
        return None;
    }
    let system = shared_str_any(span, MESSAGING_SYSTEM)?;
    let dest = shared_str_any(span, MESSAGING_DESTINATION);
    Some((shared_str_any(span, PEER_SERVICE).or(dest).unwrap_or(system).clone(), NodeKind::Queue))
}

/// The first of several text attributes present; header attributes are arrays of strings.
pub fn text_of(attrs: &[KeyValue], keys: &[&str]) -> Arc<str> {
    first_of(attrs, keys, shared_text_value).cloned().unwrap_or_default()
}

/// The first of `keys` present in `attrs` whose value `take` accepts.
fn first_of<'a, T>(attrs: &'a [KeyValue], keys: &[&str], take: impl Fn(&'a Value) -> Option<T>) -> Option<T> {
    keys.iter().find_map(|k| attrs.iter().find(|(a, _)| &**a == *k).and_then(|(_, v)| take(v)))
}

/// What a text field takes from one attribute's value, if it can.
pub fn text_value(v: &Value) -> Option<&str> {
    shared_text_value(v).map(|s| &**s)
}

/// `text_value`, as the value's own shared string: a record points at it rather than copying it.
pub fn shared_text_value(v: &Value) -> Option<&Arc<str>> {
    match v {
        Value::Str(v) => Some(v),
        Value::Array(a) => match a.first() {
            Some(Value::Str(v)) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// The HTTP status of a transaction's attributes; 0 when not an HTTP transaction.
pub fn http_status_of(attrs: &[KeyValue]) -> u32 {
    first_of(attrs, HTTP_STATUS, status_value).unwrap_or(0)
}

/// What the HTTP status takes from one attribute's value, if it can.
pub fn status_value(v: &Value) -> Option<u32> {
    match v {
        Value::Int(v) => u32::try_from(*v).ok(),
        Value::Str(v) => v.parse().ok(),
        _ => None,
    }
}

/// The XLog fields `transaction` takes from its entry span's attributes, each with the keys it
/// reads: a segment of records derived from spans computes them from its attribute columns
/// instead of storing them twice.
pub const PROMOTED: [Promoted; 5] = [
    Promoted::Text(CLIENT_ADDRESS),
    Promoted::Text(USER_ID),
    Promoted::Text(USER_AGENT),
    Promoted::Text(REFERER),
    Promoted::HttpStatus,
];

#[derive(Debug, Clone, Copy)]
pub enum Promoted {
    Text(&'static [&'static str]),
    HttpStatus,
}

impl Promoted {
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Promoted::Text(keys) => keys,
            Promoted::HttpStatus => HTTP_STATUS,
        }
    }
}

/// The transaction record of an entry span, before its children are counted. Its attributes are
/// a copy of the span's list whose values it shares; it keeps no reference to the span. The
/// caller passes the instance (`Resource::shared_instance`): extraction has already found it
/// for the resource's calls, once for all the spans of a request.
pub fn transaction(s: &Span, instance: Arc<str>) -> XLog {
    let http_status = http_status_of(&s.attributes);
    let error = s.status_code == status::ERROR;
    let error_message: Arc<str> = if !s.status_message.is_empty() {
        s.status_message.as_str().into()
    } else if error {
        s.events
            .iter()
            .filter(|e| e.name == "exception")
            .find_map(|e| {
                EXCEPTION_TEXT.iter().find_map(|k| match e.attributes.iter().find(|(ek, _)| **ek == **k) {
                    Some((_, Value::Str(v))) => Some(v.clone()),
                    _ => None,
                })
            })
            .unwrap_or_default()
    } else {
        Arc::default()
    };
    XLog {
        trace_id: s.trace_id,
        span_id: s.span_id,
        service: s.service.clone(),
        instance,
        endpoint: s.name.clone(),
        start_ns: s.start_ns,
        elapsed_ns: s.duration_ns,
        error,
        error_message,
        http_status,
        client_ip: text_of(&s.attributes, CLIENT_ADDRESS),
        user_id: text_of(&s.attributes, USER_ID),
        user_agent: text_of(&s.attributes, USER_AGENT),
        referer: text_of(&s.attributes, REFERER),
        cpu_ns: 0,
        alloc_bytes: 0,
        sql_count: 0,
        sql_ns: 0,
        api_count: 0,
        api_ns: 0,
        attributes: Attributes::Derived(s.attributes.clone().into_boxed_slice()),
        resource: Arc::clone(&s.resource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn peer(attrs: &[(&str, Value)]) -> Option<(String, NodeKind)> {
        peer_node(&testing::span(1, 2).kind(kind::CLIENT).parent(Some(1)).attrs(attrs).build())
            .map(|(n, k)| (n.to_string(), k))
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    #[test]
    fn virtual_nodes_are_named_from_old_and_new_peer_attributes() {
        let db = peer;
        assert_eq!(db(&[("db.system", s("mysql"))]), Some(("mysql".into(), NodeKind::Database)));
        assert_eq!(
            db(&[("db.system.name", s("postgresql")), ("server.address", s("orders-db"))]),
            Some(("orders-db".into(), NodeKind::Database))
        );
        // Databases, caches and queues by their address alone, as the semantic conventions name
        // them.
        assert_eq!(
            db(&[("db.system", s("redis")), ("net.peer.name", s("10.0.0.7")), ("net.peer.port", Value::Int(6379))]),
            Some(("10.0.0.7".into(), NodeKind::Cache))
        );
        assert_eq!(
            db(&[("db.system", s("redis")), ("peer.service", s("sessions"))]),
            Some(("sessions".into(), NodeKind::Cache))
        );
        assert_eq!(
            db(&[("messaging.system", s("kafka")), ("messaging.destination.name", s("orders"))]),
            Some(("orders".into(), NodeKind::Queue))
        );
        assert_eq!(db(&[("messaging.system", s("rabbitmq"))]), Some(("rabbitmq".into(), NodeKind::Queue)));
        // HTTP: the address and port, the old `http.host`, or the URL's authority.
        let ext = |n: &str| Some((n.to_owned(), NodeKind::External));
        assert_eq!(
            db(&[("server.address", s("api.example.net")), ("server.port", Value::Int(443))]),
            ext("api.example.net")
        );
        assert_eq!(db(&[("http.host", s("pay:8080"))]), ext("pay:8080"));
        assert_eq!(db(&[("http.url", s("http://user:pw@127.0.0.1:44943/price/1?x=1"))]), ext("127.0.0.1:44943"));
        assert_eq!(db(&[("url.full", s("https://api.example.net:443?q"))]), ext("api.example.net"));
        assert_eq!(db(&[("server.address", s("pay")), ("server.port", Value::Int(8080))]), ext("pay:8080"));
        assert_eq!(db(&[("url.full", s("not a url"))]), None);
        assert_eq!(db(&[]), None);
        // Not a call out: no peer.
        let server = testing::span(1, 1).attrs(&[("server.address", s("x"))]).build();
        assert_eq!(peer_node(&server), None);
    }
}
