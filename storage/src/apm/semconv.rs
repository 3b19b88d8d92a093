//! The OpenTelemetry semantic conventions Rewind reads, old and new names alike (BRIEF.md), and the
//! roles they give a span: an entry (a transaction), an exit to a database or cache, an exit to
//! another service, queue or API, or neither. One place, for derivation, the catalog's virtual
//! nodes and what comes next (the server map's links).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{kind, status, Span, Value};
use crate::xlog::{Attributes, XLog};

pub const DB_SYSTEM: &[&str] = &["db.system.name", "db.system"];
pub const PEER_SERVICE: &[&str] = &["peer.service", "service.peer.name"];
pub const SERVER_ADDRESS: &[&str] = &["server.address", "net.peer.name", "net.sock.peer.addr"];
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

/// The virtual node a client or producer span calls, if its attributes name one.
pub fn peer_node(span: &Span) -> Option<(String, NodeKind)> {
    if !is_exit(span) {
        return None;
    }
    let peer = span.attribute_str_any(PEER_SERVICE);
    let address = span.attribute_str_any(SERVER_ADDRESS);
    if let Some(system) = span.attribute_str_any(DB_SYSTEM) {
        let k = if CACHE_SYSTEMS.contains(&system) { NodeKind::Cache } else { NodeKind::Database };
        return Some((peer.or(address).unwrap_or(system).to_owned(), k));
    }
    if let Some(system) = span.attribute_str_any(MESSAGING_SYSTEM) {
        let dest = span.attribute_str_any(MESSAGING_DESTINATION);
        return Some((peer.or(dest).unwrap_or(system).to_owned(), NodeKind::Queue));
    }
    peer.or(address).map(|name| (name.to_owned(), NodeKind::External))
}

/// The first of several text attributes present; header attributes are arrays of strings.
fn text(s: &Span, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| match s.attribute(k)? {
            Value::Str(v) => Some(v.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default()
}

/// The transaction record of an entry span, before its children are counted. The attributes stay
/// the span's own, shared.
pub fn transaction(s: &Arc<Span>) -> XLog {
    let http_status = HTTP_STATUS
        .iter()
        .find_map(|k| match s.attribute(k)? {
            Value::Int(v) => u32::try_from(*v).ok(),
            Value::Str(v) => v.parse().ok(),
            _ => None,
        })
        .unwrap_or(0);
    let error = s.status_code == status::ERROR;
    let error_message = if !s.status_message.is_empty() {
        s.status_message.clone()
    } else if error {
        s.events
            .iter()
            .filter(|e| e.name == "exception")
            .find_map(|e| {
                EXCEPTION_TEXT
                    .iter()
                    .find_map(|k| e.attributes.iter().find(|(ek, _)| ek == k).and_then(|(_, v)| v.as_str()))
            })
            .unwrap_or_default()
            .to_owned()
    } else {
        String::new()
    };
    XLog {
        trace_id: s.trace_id,
        span_id: s.span_id,
        service: s.service.clone(),
        instance: s.resource.instance().unwrap_or_default().to_owned(),
        endpoint: s.name.clone(),
        start_ns: s.start_ns,
        elapsed_ns: s.duration_ns,
        error,
        error_message,
        http_status,
        client_ip: text(s, CLIENT_ADDRESS),
        user_id: text(s, USER_ID),
        user_agent: text(s, USER_AGENT),
        referer: text(s, REFERER),
        cpu_ns: 0,
        alloc_bytes: 0,
        sql_count: 0,
        sql_ns: 0,
        api_count: 0,
        api_ns: 0,
        attributes: Attributes::OfSpan(Arc::clone(s)),
        resource: Arc::clone(&s.resource),
    }
}
