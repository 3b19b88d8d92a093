//! The calls over the server map's links, from a released trace:
//!
//! - a CLIENT or PRODUCER span whose child is a SERVER or CONSUMER span of another service is a
//!   call from its service to that one, timed as the caller saw it (Pinpoint's view of a link);
//! - one with no instrumented callee calls the virtual node its peer attributes name (a database,
//!   cache or external service), or `UNKNOWN`;
//! - a PRODUCER naming a messaging system calls the queue, and the CONSUMER spans under it are
//!   calls from the queue to their service;
//! - a root transaction, or one whose caller never arrived, is a call from `USER`.
//!
//! A call whose callee may still arrive (an HTTP or RPC call, not a database or a queue) makes
//! its trace wait, up to the deriver's link wait, unless its peer is one that lately answered
//! without a span of its own after such a wait (`Uninstrumented`): an external API called by
//! every checkout would otherwise hold every checkout trace, with its records, for the whole wait.

use std::sync::{Arc, LazyLock};

use rustc_hash::FxHashMap;

use super::semconv::NodeKind;
use super::trace::{CallInfo, Node, Role, TraceBuf};
use crate::catalog::USER_NODE;
use crate::model::SpanId;
use crate::stats::LinkCall;

/// Calls out to a service that reported no span of its own.
pub const UNKNOWN_NODE: &str = "UNKNOWN";

/// The names every released trace's calls may take, made once: an allocation for each trace and
/// each call out was a tenth of a release.
static USER: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(USER_NODE));
static UNKNOWN: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(UNKNOWN_NODE));
static NO_INSTANCE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));

/// Each call out's instrumented callee: its SERVER or CONSUMER child of another service (of
/// several, the earliest, then the lowest span id: the same whatever order the spans came in).
fn callees(buf: &TraceBuf) -> FxHashMap<SpanId, &CallInfo> {
    let mut out: FxHashMap<SpanId, (&CallInfo, SpanId)> = FxHashMap::default();
    for (id, n) in &buf.nodes {
        let (Role::Entry, Some(call), Some(parent)) = (n.role, &n.call, n.parent) else { continue };
        if let Some(p) = buf.get(&parent) {
            if matches!(p.role, Role::Sql(_) | Role::Api(_)) && p.service != n.service {
                out.entry(parent)
                    .and_modify(|(c, cid)| {
                        if (call.start_ns, *id) < (c.start_ns, *cid) {
                            (*c, *cid) = (call, *id);
                        }
                    })
                    .or_insert((call, *id));
            }
        }
    }
    out.into_iter().map(|(k, (c, _))| (k, c)).collect()
}

/// Peers that, after a call to them waited the whole link wait, never showed a span of their own:
/// for `UNINSTRUMENTED_TTL_NS` calls to them do not wait. A callee seen under any call to one
/// forgets it at once, and a later wait that ends without one renews it: after the TTL a call
/// waits again, so a peer instrumented since is known for what it is within a minute.
#[derive(Default)]
pub(super) struct Uninstrumented {
    until: FxHashMap<Arc<str>, u64>,
}

const UNINSTRUMENTED_TTL_NS: u64 = 60_000_000_000;
/// Peers remembered at most: names come from span attributes, which a client chooses.
pub(super) const MAX_UNINSTRUMENTED: usize = 10_000;

impl Uninstrumented {
    fn knows(&self, peer: &str, now_ns: u64) -> bool {
        self.until.get(peer).is_some_and(|&t| t > now_ns)
    }

    fn answered(&mut self, peer: &str) {
        self.until.remove(peer);
    }

    fn no_show(&mut self, peer: &Arc<str>, now_ns: u64) {
        // A name may be 16 KiB: ten thousand of them would hold 160 MiB for the TTL. Longer than
        // the catalog keeps a name, a peer is not remembered (calls to it wait, as at first).
        if peer.len() > crate::catalog::MAX_NAME_BYTES {
            return;
        }
        if self.until.len() >= MAX_UNINSTRUMENTED && !self.until.contains_key(peer) {
            self.until.retain(|_, t| *t > now_ns);
            if self.until.len() >= MAX_UNINSTRUMENTED {
                return;
            }
        }
        self.until.insert(peer.clone(), now_ns.saturating_add(UNINSTRUMENTED_TTL_NS));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.until.len()
    }
}

/// What a trace's release teaches `Uninstrumented`.
pub(super) struct Learn<'a> {
    pub(super) peers: &'a mut Uninstrumented,
    pub(super) now_ns: u64,
    /// The trace was released after waiting the whole link wait: a call without a callee then is
    /// a peer that did not answer with a span.
    pub(super) waited: bool,
}

/// A call out whose peer is known for what it is needs no callee.
fn definite(call: &CallInfo) -> bool {
    matches!(call.peer, Some((_, NodeKind::Database | NodeKind::Cache | NodeKind::Queue)))
}

/// True while some call out may still see its callee arrive, or some entry its caller.
pub(super) fn waiting(buf: &TraceBuf, peers: &Uninstrumented, now_ns: u64) -> bool {
    let callees = callees(buf);
    buf.nodes.iter().any(|(id, n)| match (n.role, &n.call) {
        (Role::Entry, _) => n.parent.is_some_and(|p| buf.get(&p).is_none()),
        (Role::Sql(_) | Role::Api(_), Some(call)) => {
            !definite(call)
                && !callees.contains_key(id)
                && !call.peer.as_ref().is_some_and(|(p, _)| peers.knows(p, now_ns))
        }
        _ => false,
    })
}

fn call(source: &Arc<str>, source_instance: &Arc<str>, target: &CallInfo, timed_by: &CallInfo) -> LinkCall {
    LinkCall {
        start_ns: timed_by.start_ns,
        source: source.clone(),
        source_instance: source_instance.clone(),
        target: target.origin.service.clone(),
        target_instance: target.origin.instance.clone(),
        target_kind: NodeKind::Server,
        elapsed_ns: timed_by.duration_ns,
        error: timed_by.error,
    }
}

fn to_peer(from: &CallInfo, name: Arc<str>, kind: NodeKind) -> LinkCall {
    LinkCall {
        start_ns: from.start_ns,
        source: from.origin.service.clone(),
        source_instance: from.origin.instance.clone(),
        target: name,
        target_instance: NO_INSTANCE.clone(),
        target_kind: kind,
        elapsed_ns: from.duration_ns,
        error: from.error,
    }
}

/// Every call of a released trace, added to `out`.
pub(super) fn resolve(buf: &TraceBuf, learn: Learn<'_>, out: &mut Vec<LinkCall>) {
    let callees = callees(buf);
    let (user, none) = (&*USER, &*NO_INSTANCE);
    for (id, n) in &buf.nodes {
        let Some(c) = &n.call else { continue };
        match n.role {
            Role::Entry => {
                let parent: Option<&Node> = n.parent.and_then(|p| buf.get(&p));
                match parent {
                    // Consumed from a queue the producer of which did not report.
                    None if matches!(c.peer, Some((_, NodeKind::Queue))) => {
                        let queue = c.peer.as_ref().map(|(q, _)| q).expect("matched");
                        out.push(call(queue, none, c, c));
                    }
                    // A root, or a caller that never reported: the user's call.
                    None => out.push(call(user, none, c, c)),
                    Some(p) if p.service == n.service => {}
                    Some(p) => match (&p.role, &p.call) {
                        // Consumed from a queue: the queue calls this service.
                        (Role::Sql(_) | Role::Api(_), Some(pc)) => {
                            if let Some((queue, NodeKind::Queue)) = &pc.peer {
                                out.push(call(queue, none, c, c));
                            }
                            // Otherwise the call out counts it, from the caller's side.
                        }
                        // Called by another service without a client span: timed by the callee.
                        (Role::Entry, Some(pc)) => out.push(call(&pc.origin.service, &pc.origin.instance, c, c)),
                        _ => out.push(call(user, none, c, c)),
                    },
                }
            }
            Role::Sql(_) | Role::Api(_) => match (&c.peer, callees.get(id)) {
                (Some((queue, NodeKind::Queue)), _) => out.push(to_peer(c, queue.clone(), NodeKind::Queue)),
                (_, Some(callee)) => {
                    if let Some((peer, _)) = &c.peer {
                        learn.peers.answered(peer);
                    }
                    out.push(call(&c.origin.service, &c.origin.instance, callee, c))
                }
                (Some((peer, kind)), None) => {
                    if learn.waited && !definite(c) {
                        learn.peers.no_show(peer, learn.now_ns);
                    }
                    out.push(to_peer(c, peer.clone(), *kind))
                }
                (None, None) => out.push(to_peer(c, UNKNOWN.clone(), NodeKind::External)),
            },
            Role::Other => {}
        }
    }
}
