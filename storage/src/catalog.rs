//! The services seen: instrumented services from span resources, and virtual nodes (databases,
//! caches, queues, external services, the user) named from the peer attributes of client and
//! producer spans (`apm::semconv::peer_node`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::apm::semconv::peer_node;
pub use crate::apm::semconv::NodeKind;
use crate::model::{kind, Span};

/// Bounded so a flood of pod names cannot grow one entry without limit.
pub const MAX_INSTANCES: usize = 1024;
/// Entries at most, by default (`StoreConfig::max_services`).
pub const MAX_SERVICES: usize = 10_000;
/// Instances across all entries at most: a pod name costs a string for as long as the retention.
pub const MAX_TOTAL_INSTANCES: usize = 50_000;
/// Longest service, peer or instance name kept (bytes); a longer one is not a name a map can show.
pub const MAX_NAME_BYTES: usize = 256;
pub const USER_NODE: &str = "USER";
/// Span names (Jaeger's "operations") kept for one service: a service naming its spans by URL or
/// statement would otherwise grow its entry with every request.
pub const MAX_OPERATIONS: usize = 2_000;
/// Span names kept across all services.
pub const MAX_TOTAL_OPERATIONS: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub kind: NodeKind,
    pub instances: BTreeSet<String>,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub span_count: u64,
    /// The names of the service's spans, each with the span kinds it was seen with (bit `1 << k`
    /// for OTLP's kind `k`). Stores written before it have none, and learn them as spans arrive.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operations: BTreeMap<String, u8>,
}

/// Every distinct `peer.service`, `server.address` or socket address a client span names becomes
/// a node, so the catalog is bounded: at most `max` entries, of which peers (virtual nodes) at most
/// half, so that a flood of peer names cannot keep a new instrumented service out. Names past
/// the bound are counted (`rewind_storage_catalog_overflow_total`), not kept; entries not seen
/// within the retention are pruned with it. Entries are shared (`Arc`), so a listing copies
/// pointers under the lock the write path takes, not names and instance sets.
pub struct Catalog {
    services: BTreeMap<String, Arc<ServiceInfo>>,
    dirty: BTreeSet<String>,
    max: usize,
    peers: usize,
    /// Instances of all entries, against `MAX_TOTAL_INSTANCES`.
    instances: usize,
    /// Operations of all entries, against `MAX_TOTAL_OPERATIONS`.
    operations: usize,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::from_entries(Vec::new(), MAX_SERVICES)
    }
}

impl Catalog {
    /// The persisted entries are all kept, even past `max` (a lowered bound refuses new names
    /// only).
    pub fn from_entries(entries: impl IntoIterator<Item = ServiceInfo>, max: usize) -> Self {
        let services: BTreeMap<_, _> = entries.into_iter().map(|s| (s.name.clone(), Arc::new(s))).collect();
        let peers = services.values().filter(|s| is_peer(s.kind)).count();
        let instances = services.values().map(|s| s.instances.len()).sum();
        let operations = services.values().map(|s| s.operations.len()).sum();
        Self { services, dirty: BTreeSet::new(), max, peers, instances, operations }
    }

    /// One span's sightings (the tests'; the write path applies a batch's, `apply`).
    #[cfg(test)]
    pub fn observe(&mut self, span: &Span) {
        self.apply(&Sightings::of([span]));
    }

    /// What a batch's spans showed (gathered off the write path's locks, `Sightings::of`).
    pub fn apply(&mut self, sightings: &Sightings) {
        for s in &sightings.entries {
            self.note(&s.name, s.kind, s.instance.as_deref(), (s.first_ns, s.last_ns), s.spans);
        }
        for (service, name, kinds) in &sightings.operations {
            self.note_operation(service, name, *kinds);
        }
    }

    /// After the service's own sighting, which made its entry (unless the catalog was full).
    fn note_operation(&mut self, service: &str, name: &str, kinds: u8) {
        let Some(entry) = self.services.get_mut(service) else { return };
        if entry.operations.get(name).is_some_and(|k| k & kinds == kinds) {
            return;
        }
        let new = !entry.operations.contains_key(name);
        if new
            && (name.len() > MAX_NAME_BYTES
                || entry.operations.len() >= MAX_OPERATIONS
                || self.operations >= MAX_TOTAL_OPERATIONS)
        {
            crate::metrics::operations_overflow();
            return;
        }
        *Arc::make_mut(entry).operations.entry(name.to_owned()).or_default() |= kinds;
        self.operations += usize::from(new);
        if !self.dirty.contains(service) {
            self.dirty.insert(service.to_owned());
        }
    }

    /// Allocates only for what it has not seen before.
    fn note(&mut self, name: &str, kind: NodeKind, instance: Option<&str>, (first, last): (u64, u64), spans: u64) {
        if !self.services.contains_key(name) {
            let full = name.len() > MAX_NAME_BYTES
                || self.services.len() >= self.max
                || (is_peer(kind) && self.peers >= self.max / 2);
            if full {
                crate::metrics::catalog_overflow();
                return;
            }
            let info = ServiceInfo {
                name: name.to_owned(),
                kind,
                instances: BTreeSet::new(),
                first_seen_ns: first,
                last_seen_ns: last,
                span_count: 0,
                operations: BTreeMap::new(),
            };
            self.peers += usize::from(is_peer(kind));
            self.services.insert(name.to_owned(), Arc::new(info));
            crate::metrics::catalog_services(self.services.len());
        }
        let entry = self.services.get_mut(name).expect("inserted above");
        // Copies the entry only while a listing still holds it.
        let e = Arc::make_mut(entry);
        let was_peer = is_peer(e.kind);
        e.kind = e.kind.min(kind);
        if was_peer && !is_peer(e.kind) {
            self.peers -= 1;
        }
        if let Some(i) = instance.filter(|i| i.len() <= MAX_NAME_BYTES) {
            if e.instances.len() < MAX_INSTANCES && self.instances < MAX_TOTAL_INSTANCES && !e.instances.contains(i) {
                e.instances.insert(i.to_owned());
                self.instances += 1;
            }
        }
        e.first_seen_ns = e.first_seen_ns.min(first);
        e.last_seen_ns = e.last_seen_ns.max(last);
        e.span_count += spans;
        if !self.dirty.contains(name) {
            self.dirty.insert(name.to_owned());
        }
    }

    /// Drops the entries last seen before `cutoff_ns` (the retention's): their names, to delete
    /// from the store.
    pub fn prune(&mut self, cutoff_ns: u64) -> Vec<String> {
        let gone: Vec<String> =
            self.services.values().filter(|s| s.last_seen_ns < cutoff_ns).map(|s| s.name.clone()).collect();
        for name in &gone {
            if let Some(s) = self.services.remove(name) {
                self.peers -= usize::from(is_peer(s.kind));
                self.instances -= s.instances.len();
                self.operations -= s.operations.len();
            }
            self.dirty.remove(name);
        }
        crate::metrics::catalog_services(self.services.len());
        gone
    }

    pub fn contains(&self, name: &str) -> bool {
        self.services.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<ServiceInfo>> {
        self.services.get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<ServiceInfo>> {
        self.services.values().cloned().collect()
    }

    /// Entries taken by `take_dirty` whose write failed: written with the next.
    pub fn mark_dirty(&mut self, entries: Vec<ServiceInfo>) {
        self.dirty.extend(entries.into_iter().map(|s| s.name));
    }

    /// Entries changed since the last call, to persist.
    pub fn take_dirty(&mut self) -> Vec<ServiceInfo> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|n| self.services.get(&n).map(|s| ServiceInfo::clone(s)))
            .collect()
    }
}

/// What a batch of spans shows the catalog: one entry per distinct (name, kind, instance), with
/// the span times and count seen, and each service's distinct span names. Gathered where the
/// batch is encoded, off the write path's locks, so that the catalog's lock is taken once per
/// batch for its few distinct nodes.
#[derive(Debug, Default)]
pub struct Sightings {
    entries: Vec<Sighting>,
    /// (service, span name, kinds seen as bits `1 << kind`).
    operations: Vec<(Box<str>, Box<str>, u8)>,
}

#[derive(Debug)]
struct Sighting {
    name: Box<str>,
    kind: NodeKind,
    instance: Option<Box<str>>,
    first_ns: u64,
    last_ns: u64,
    spans: u64,
}

impl Sightings {
    pub fn of<'s>(spans: impl IntoIterator<Item = &'s Span>) -> Self {
        Self::with_peers(spans, |_| None)
    }

    /// As `of`, taking a span's peer from `known` (by its index) where the caller has found it
    /// already (XLog extraction names the peer of every call out it counts).
    pub fn with_peers<'s, 'p>(
        spans: impl IntoIterator<Item = &'s Span>,
        known: impl Fn(usize) -> Option<Option<(&'p str, NodeKind)>>,
    ) -> Self {
        let mut out = Gathering::default();
        let mut operations: rustc_hash::FxHashMap<(&'s str, &'s str), u8> = Default::default();
        // A batch's spans share a handful of resources, in runs: a run's entry (its service and
        // instance) is looked up once.
        let mut last: Option<((*const crate::model::Resource, *const u8), usize)> = None;
        for (i, span) in spans.into_iter().enumerate() {
            let t = span.start_ns;
            let ptr = (Arc::as_ptr(&span.resource), span.service.as_ptr());
            match last {
                Some((p, entry)) if p == ptr => out.seen(entry, t, 1),
                _ => {
                    let entry = out.add(&span.service, NodeKind::Server, span.resource.instance(), t, 1);
                    last = Some((ptr, entry));
                }
            }
            *operations.entry((&span.service, &span.name)).or_default() |= kind_bit(span.kind);
            match known(i) {
                Some(Some((name, k))) => {
                    out.add(name, k, None, t, 0);
                }
                Some(None) => {}
                None => {
                    if let Some((name, k)) = peer_node(span) {
                        out.add(&name, k, None, t, 0);
                    }
                }
            }
            if span.parent_span_id.is_none() && span.kind == kind::SERVER {
                out.add(USER_NODE, NodeKind::User, None, t, 0);
            }
        }
        let operations = operations.into_iter().map(|((s, n), k)| (s.into(), n.into(), k)).collect();
        Self { entries: out.entries, operations }
    }
}

/// A span kind's bit in `ServiceInfo::operations` (OTLP's kinds are 0 to 5; anything else is
/// stored as unspecified).
pub fn kind_bit(kind: u8) -> u8 {
    1 << if kind <= kind::CONSUMER { kind } else { kind::UNSPECIFIED }
}

#[derive(Default)]
struct Gathering {
    entries: Vec<Sighting>,
    /// Entries by name: a batch names few nodes, each with one kind and a few instances.
    by_name: rustc_hash::FxHashMap<Box<str>, Vec<usize>>,
}

impl Gathering {
    /// Counts a sighting of (name, kind, instance); returns its entry, for `seen`.
    fn add(&mut self, name: &str, kind: NodeKind, instance: Option<&str>, t: u64, spans: u64) -> usize {
        let found = self.by_name.get(name).and_then(|ids| {
            ids.iter()
                .copied()
                .find(|&i| self.entries[i].kind == kind && self.entries[i].instance.as_deref() == instance)
        });
        match found {
            Some(i) => {
                self.seen(i, t, spans);
                i
            }
            None => {
                self.by_name.entry(name.into()).or_default().push(self.entries.len());
                self.entries.push(Sighting {
                    name: name.into(),
                    kind,
                    instance: instance.map(Into::into),
                    first_ns: t,
                    last_ns: t,
                    spans,
                });
                self.entries.len() - 1
            }
        }
    }

    /// Counts another sighting of the entry `add` returned.
    fn seen(&mut self, entry: usize, t: u64, spans: u64) {
        let e = &mut self.entries[entry];
        e.first_ns = e.first_ns.min(t);
        e.last_ns = e.last_ns.max(t);
        e.spans += spans;
    }
}

/// Virtual nodes: named from what client spans call, not from a service's own resource.
fn is_peer(kind: NodeKind) -> bool {
    !matches!(kind, NodeKind::Server | NodeKind::User)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn client_span(service: &str, peer: &str, t: u64) -> Span {
        crate::testing::span(1, 2)
            .parent(Some(1))
            .service(service)
            .kind(kind::CLIENT)
            .start(t)
            .attrs(&[("server.address", Value::Str(peer.into()))])
            .build()
    }

    #[test]
    fn sightings_count_every_span_of_runs_sharing_a_resource() {
        // Spans of one request share their resource and service name: runs of them, broken by
        // another resource or another service, each count in full.
        let pod = |p: &str| crate::testing::service_resource("shop", &[("k8s.pod.name", p)]);
        let (a, b) = (pod("pod-a"), pod("pod-b"));
        let on =
            |r: &Arc<crate::model::Resource>| crate::testing::span(1, 2).service("shop").resource(r.clone()).build();
        let (shop_a, shop_b) = (on(&a), on(&b));
        let at = |s: &Span, t: u64| Span { start_ns: t, ..s.clone() };
        let mut cart = at(&shop_a, 5);
        cart.service = "cart".into();
        let spans =
            [at(&shop_a, 1), at(&shop_a, 2), at(&shop_b, 3), at(&shop_a, 4), cart, at(&shop_a, 6), at(&shop_a, 7)];
        let mut c = Catalog::from_entries(Vec::new(), 100);
        c.apply(&Sightings::of(&spans));
        let shop = c.get("shop").unwrap();
        assert_eq!((shop.span_count, shop.first_seen_ns, shop.last_seen_ns), (6, 1, 7));
        assert_eq!(shop.instances.iter().map(String::as_str).collect::<Vec<_>>(), ["pod-a", "pod-b"]);
        let cart = c.get("cart").unwrap();
        assert_eq!((cart.span_count, cart.first_seen_ns, cart.last_seen_ns), (1, 5, 5));
        assert_eq!(cart.instances.iter().map(String::as_str).collect::<Vec<_>>(), ["pod-a"]);
    }

    #[test]
    fn a_flood_of_peer_names_is_bounded_and_leaves_room_for_services() {
        let mut c = Catalog::from_entries(Vec::new(), 100);
        for i in 0..10_000 {
            c.observe(&client_span("shop", &format!("host-{i}.example"), 1));
        }
        assert_eq!(c.list().len(), 51, "the service and 50 peers");
        for i in 0..60 {
            c.observe(&client_span(&format!("svc-{i}"), "host-0.example", 2));
        }
        assert_eq!(c.list().len(), 100, "services fill the rest, then stop");
        assert!(c.contains("svc-48") && !c.contains("svc-59"));
    }

    #[test]
    fn names_too_long_to_show_are_not_kept_and_instances_are_bounded_in_all() {
        let mut c = Catalog::from_entries(Vec::new(), 100);
        c.observe(&client_span("shop", &"h".repeat(MAX_NAME_BYTES + 1), 1));
        assert_eq!(c.list().len(), 1, "only the service: the peer's name is too long");
        let pod = |i: usize| crate::testing::service_resource("shop", &[("k8s.pod.name", &format!("pod-{i}"))]);
        let long = crate::testing::service_resource("shop", &[("k8s.pod.name", &"p".repeat(MAX_NAME_BYTES + 1))]);
        c.observe(&crate::testing::span(1, 3).resource(long).build());
        assert!(c.list()[0].instances.is_empty());
        for s in 0..(MAX_TOTAL_INSTANCES / MAX_INSTANCES + 2) {
            for i in 0..MAX_INSTANCES {
                c.observe(
                    &crate::testing::span(1, 3).service(&format!("s{s}")).resource(pod(s * MAX_INSTANCES + i)).build(),
                );
            }
        }
        let total: usize = c.list().iter().map(|s| s.instances.len()).sum();
        assert_eq!(total, MAX_TOTAL_INSTANCES);
        c.prune(u64::MAX);
        assert_eq!(c.instances, 0, "pruning gives the instances back");
    }

    #[test]
    fn span_names_become_operations_with_their_kinds_bounded_per_service_and_in_all() {
        let mut c = Catalog::from_entries(Vec::new(), 1000);
        let named = |service: &str, name: &str, k: u8| {
            crate::testing::span(1, 2).service(service).name(name).kind(k).start(5).build()
        };
        c.observe(&named("cart", "GET /cart", kind::SERVER));
        c.observe(&named("cart", "SELECT cart", kind::CLIENT));
        c.observe(&named("cart", "GET /cart", kind::INTERNAL));
        c.observe(&named("cart", "odd", 9));
        let ops = &c.get("cart").unwrap().operations;
        assert_eq!(ops["GET /cart"], 1 << kind::SERVER | 1 << kind::INTERNAL);
        assert_eq!(ops["SELECT cart"], 1 << kind::CLIENT);
        assert_eq!(ops["odd"], 1 << kind::UNSPECIFIED, "an unknown kind counts as unspecified");
        c.observe(&client_span("cart", "mysql", 5));
        assert!(c.get("mysql").unwrap().operations.is_empty(), "peers have no operations");
        assert_eq!(c.get("cart").unwrap().operations.len(), 4, "the client span's own name");
        // A service naming spans by URL is bounded; the names kept stay.
        for i in 0..MAX_OPERATIONS + 10 {
            c.observe(&named("api", &format!("GET /item/{i}"), kind::SERVER));
        }
        c.observe(&named("api", &"x".repeat(MAX_NAME_BYTES + 1), kind::SERVER));
        assert_eq!(c.get("api").unwrap().operations.len(), MAX_OPERATIONS);
        assert!(c.get("api").unwrap().operations.contains_key("GET /item/0"));
        // In all, across services.
        for s in 0..(MAX_TOTAL_OPERATIONS / MAX_OPERATIONS + 2) {
            for i in 0..MAX_OPERATIONS {
                c.observe(&named(&format!("s{s}"), &format!("op {i}"), kind::SERVER));
            }
        }
        let total: usize = c.list().iter().map(|s| s.operations.len()).sum();
        assert_eq!(total, MAX_TOTAL_OPERATIONS);
        // Persisted with the entry, and read back (an entry of an older store has none).
        let json = serde_json::to_string(&*c.get("cart").unwrap()).unwrap();
        let back: ServiceInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(back.operations.len(), 4);
        let old = r#"{"name":"x","kind":"server","instances":[],"first_seen_ns":1,"last_seen_ns":2,"span_count":3}"#;
        assert!(serde_json::from_str::<ServiceInfo>(old).unwrap().operations.is_empty());
        c.prune(u64::MAX);
        assert_eq!(c.operations, 0, "pruning gives the operations back");
    }

    #[test]
    fn entries_not_seen_within_the_retention_are_pruned() {
        let mut c = Catalog::from_entries(Vec::new(), 100);
        c.observe(&client_span("old", "db-old", 10));
        c.observe(&client_span("new", "db-new", 1000));
        let snapshot = c.list();
        let mut gone = c.prune(500);
        gone.sort();
        assert_eq!(gone, ["db-old", "old"]);
        assert!(c.contains("new") && c.contains("db-new") && !c.contains("old"));
        // A listing taken before keeps what it saw; the catalog's own entries move on.
        assert_eq!(snapshot.len(), 4);
        c.observe(&client_span("new", "db-new", 2000));
        assert_eq!(snapshot.iter().find(|s| s.name == "new").unwrap().last_seen_ns, 1000);
        assert!(c.take_dirty().iter().all(|s| s.name != "old"));
    }
}
