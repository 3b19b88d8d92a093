//! The services seen: instrumented services from span resources, and virtual nodes (databases,
//! caches, queues, external services, the user) named from the peer attributes of client and
//! producer spans (`apm::semconv::peer_node`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::apm::semconv::peer_node;
pub use crate::apm::semconv::NodeKind;
use crate::model::{kind, Span};

/// Bounded so a flood of pod names cannot grow one entry without limit.
pub const MAX_INSTANCES: usize = 1024;
pub const USER_NODE: &str = "USER";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub kind: NodeKind,
    pub instances: BTreeSet<String>,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub span_count: u64,
}

#[derive(Default)]
pub struct Catalog {
    services: BTreeMap<String, ServiceInfo>,
    dirty: BTreeSet<String>,
}

impl Catalog {
    pub fn from_entries(entries: impl IntoIterator<Item = ServiceInfo>) -> Self {
        Self { services: entries.into_iter().map(|s| (s.name.clone(), s)).collect(), dirty: BTreeSet::new() }
    }

    pub fn observe(&mut self, span: &Span) {
        self.note(&span.service, NodeKind::Server, span.resource.instance(), span.start_ns, 1);
        if let Some((name, k)) = peer_node(span) {
            self.note(&name, k, None, span.start_ns, 0);
        }
        if span.parent_span_id.is_none() && span.kind == kind::SERVER {
            self.note(USER_NODE, NodeKind::User, None, span.start_ns, 0);
        }
    }

    /// Called for every span: allocates only for what it has not seen before.
    fn note(&mut self, name: &str, kind: NodeKind, instance: Option<&str>, t: u64, spans: u64) {
        if !self.services.contains_key(name) {
            let info = ServiceInfo {
                name: name.to_owned(),
                kind,
                instances: BTreeSet::new(),
                first_seen_ns: t,
                last_seen_ns: t,
                span_count: 0,
            };
            self.services.insert(name.to_owned(), info);
        }
        let e = self.services.get_mut(name).expect("inserted above");
        e.kind = e.kind.min(kind);
        if let Some(i) = instance {
            if e.instances.len() < MAX_INSTANCES && !e.instances.contains(i) {
                e.instances.insert(i.to_owned());
            }
        }
        e.first_seen_ns = e.first_seen_ns.min(t);
        e.last_seen_ns = e.last_seen_ns.max(t);
        e.span_count += spans;
        if !self.dirty.contains(name) {
            self.dirty.insert(name.to_owned());
        }
    }

    pub fn list(&self) -> Vec<ServiceInfo> {
        self.services.values().cloned().collect()
    }

    /// Entries taken by `take_dirty` whose write failed: written with the next.
    pub fn mark_dirty(&mut self, entries: Vec<ServiceInfo>) {
        self.dirty.extend(entries.into_iter().map(|s| s.name));
    }

    /// Entries changed since the last call, to persist.
    pub fn take_dirty(&mut self) -> Vec<ServiceInfo> {
        std::mem::take(&mut self.dirty).into_iter().filter_map(|n| self.services.get(&n).cloned()).collect()
    }
}
