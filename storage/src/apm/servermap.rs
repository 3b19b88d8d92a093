//! The server map over a range: nodes (services, and the virtual nodes their calls name) and
//! links, each with its figures, merged from the statistics of the range; cut around one service
//! when asked, to the depths asked.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use super::figures::{Calc, Figures, Schema, Thresholds};
use super::semconv::NodeKind;
use crate::catalog::USER_NODE;
use crate::error::StorageError;
use crate::stats::{read, Cell, Key};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct MapQuery {
    /// Unix seconds, `[from, to)`.
    pub from_s: u64,
    pub to_s: u64,
    /// Around this service only, `in_depth` callers up and `out_depth` callees down.
    pub service: Option<String>,
    pub in_depth: u8,
    pub out_depth: u8,
    /// With `service`: only the calls and transactions of this instance of it.
    pub instance: Option<String>,
    /// Each node and link broken down by instance.
    pub by_instance: bool,
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct InstanceFigures {
    pub instance: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct LinkInstanceFigures {
    pub source_instance: String,
    pub target_instance: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct MapNode {
    pub name: String,
    pub kind: NodeKind,
    pub instances: Vec<String>,
    #[serde(flatten)]
    pub figures: Figures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_instance: Option<Vec<InstanceFigures>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct MapLink {
    pub source: String,
    pub target: String,
    pub target_kind: NodeKind,
    #[serde(flatten)]
    pub figures: Figures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_instance: Option<Vec<LinkInstanceFigures>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct ServerMap {
    /// The range answered, in milliseconds (rounded out to whole minutes where second rows are
    /// gone).
    pub from_ms: u64,
    pub to_ms: u64,
    pub nodes: Vec<MapNode>,
    pub links: Vec<MapLink>,
}

/// Cells grouped for one node or link: the total, and by instance (or instance pair).
#[derive(Default)]
struct Group<K: Ord> {
    total: Cell,
    by: BTreeMap<K, Cell>,
}

impl<K: Ord> Group<K> {
    fn add(&mut self, k: K, c: &Cell) {
        self.total.merge(c);
        self.by.entry(k).or_default().merge(c);
    }
}

type LinkId = (Arc<str>, Arc<str>, NodeKind);
/// A link's cells, by (caller instance, callee instance).
type LinkGroup = Group<(Arc<str>, Arc<str>)>;

impl Store {
    pub fn server_map(&self, q: &MapQuery) -> Result<ServerMap, StorageError> {
        let (rows, (from, to)) = self.stats_rows(q.from_s, q.to_s, &|_| true)?;
        let cells = read::totals(rows)?;
        let instance_ok = |service: &str, instance: &str| match (&q.service, &q.instance) {
            (Some(s), Some(i)) if s == service => i == instance,
            _ => true,
        };
        let mut services: BTreeMap<Arc<str>, Group<Arc<str>>> = BTreeMap::new();
        let mut links: BTreeMap<LinkId, LinkGroup> = BTreeMap::new();
        for (key, cell) in &cells {
            match key {
                Key::Node { service, instance, .. } if instance_ok(service, instance) => {
                    services.entry(service.clone()).or_default().add(instance.clone(), cell)
                }
                Key::Link { source, source_instance, target, target_instance, target_kind }
                    if instance_ok(source, source_instance) && instance_ok(target, target_instance) =>
                {
                    links
                        .entry((source.clone(), target.clone(), *target_kind))
                        .or_default()
                        .add((source_instance.clone(), target_instance.clone()), cell)
                }
                _ => {}
            }
        }
        let keep = q.service.as_deref().map(|s| around(s, links.keys(), q.in_depth, q.out_depth));

        let mut calc = Calc::new(q.thresholds);
        let mut map_links = Vec::new();
        // Virtual nodes (and USER) have no transactions of their own: their figures are those of
        // the calls they receive (USER's, of the calls it makes).
        let mut virtual_nodes: BTreeMap<Arc<str>, (NodeKind, Cell)> = BTreeMap::new();
        for ((source, target, kind), g) in &links {
            if keep.as_ref().is_some_and(|k| !k.links.contains(&(source.clone(), target.clone()))) {
                continue;
            }
            if *kind != NodeKind::Server {
                virtual_nodes.entry(target.clone()).or_insert((*kind, Cell::default())).1.merge(&g.total);
            }
            if &**source == USER_NODE {
                virtual_nodes.entry(source.clone()).or_insert((NodeKind::User, Cell::default())).1.merge(&g.total);
            }
            let schema = Schema::of(*kind);
            map_links.push(MapLink {
                source: source.to_string(),
                target: target.to_string(),
                target_kind: *kind,
                figures: calc.figures(&g.total, schema),
                by_instance: q.by_instance.then(|| {
                    g.by.iter()
                        .map(|((si, ti), c)| LinkInstanceFigures {
                            source_instance: si.to_string(),
                            target_instance: ti.to_string(),
                            figures: calc.figures(c, schema),
                        })
                        .collect()
                }),
            });
        }
        let mut nodes = Vec::new();
        for (name, g) in &services {
            if keep.as_ref().is_some_and(|k| !k.nodes.contains(name)) {
                continue;
            }
            nodes.push(MapNode {
                name: name.to_string(),
                kind: NodeKind::Server,
                instances: g.by.keys().filter(|i| !i.is_empty()).map(|i| i.to_string()).collect(),
                figures: calc.figures(&g.total, Schema::Normal),
                by_instance: q.by_instance.then(|| {
                    g.by.iter()
                        .map(|(i, c)| InstanceFigures {
                            instance: i.to_string(),
                            figures: calc.figures(c, Schema::Normal),
                        })
                        .collect()
                }),
            });
        }
        for (name, (kind, cell)) in &virtual_nodes {
            // A name that is also an instrumented service is that service.
            if services.contains_key(name) || keep.as_ref().is_some_and(|k| !k.nodes.contains(name)) {
                continue;
            }
            nodes.push(MapNode {
                name: name.to_string(),
                kind: *kind,
                instances: Vec::new(),
                figures: calc.figures(cell, Schema::of(*kind)),
                by_instance: None,
            });
        }
        Ok(ServerMap { from_ms: from * 1000, to_ms: to * 1000, nodes, links: map_links })
    }
}

/// What a cut around one service keeps.
struct Kept {
    nodes: BTreeSet<Arc<str>>,
    links: BTreeSet<(Arc<str>, Arc<str>)>,
}

/// The service, its callees down to `out_depth` and its callers up to `in_depth`, and the links
/// walked to reach them.
fn around<'a>(service: &str, links: impl Iterator<Item = &'a LinkId>, in_depth: u8, out_depth: u8) -> Kept {
    let edges: Vec<(Arc<str>, Arc<str>)> = links.map(|(s, t, _)| (s.clone(), t.clone())).collect();
    let mut kept = Kept { nodes: BTreeSet::new(), links: BTreeSet::new() };
    kept.nodes.insert(Arc::from(service));
    for (down, depth) in [(true, out_depth), (false, in_depth)] {
        let mut queue: VecDeque<(Arc<str>, u8)> = VecDeque::from([(Arc::from(service), 0)]);
        let mut seen: BTreeSet<Arc<str>> = BTreeSet::from([Arc::from(service)]);
        while let Some((at, d)) = queue.pop_front() {
            if d >= depth {
                continue;
            }
            for (s, t) in &edges {
                let (from, next) = if down { (s, t) } else { (t, s) };
                if **from == *at {
                    kept.links.insert((s.clone(), t.clone()));
                    kept.nodes.insert(next.clone());
                    if seen.insert(next.clone()) {
                        queue.push_back((next.clone(), d + 1));
                    }
                }
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(s: &str, t: &str) -> LinkId {
        (Arc::from(s), Arc::from(t), NodeKind::Server)
    }

    #[test]
    fn a_cut_keeps_the_depths_asked() {
        let links = [link("USER", "front"), link("front", "cart"), link("cart", "redis"), link("front", "catalog")];
        let k = around("cart", links.iter(), 1, 1);
        let nodes: Vec<&str> = k.nodes.iter().map(|n| &**n).collect();
        assert_eq!(nodes, vec!["cart", "front", "redis"]);
        let k = around("cart", links.iter(), 2, 0);
        let nodes: Vec<&str> = k.nodes.iter().map(|n| &**n).collect();
        assert_eq!(nodes, vec!["USER", "cart", "front"]);
        assert!(!k.links.contains(&(Arc::from("front"), Arc::from("catalog"))), "not on the way up");
    }
}
