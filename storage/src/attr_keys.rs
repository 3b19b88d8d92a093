//! The store-wide registry of attribute keys: what bounds the segment metadata held in memory.
//!
//! Every attribute key of a segment is a column and a name in its meta, and metas stay in memory
//! until retention drops their partition. Left alone, a client inventing keys (a request id used
//! as a key, say) grows them without limit: 1.5M distinct keys in 36 s took a server from 45 MB
//! to 404 MB, all of it kept. So keys are admitted at ingest against a cap on distinct keys within
//! the retention (`StoreConfig::max_attribute_keys`); a key past it is dropped from the span and
//! counted, as an SDK's attribute limit would (`dropped_attributes_count`, and
//! `rewind_storage_attribute_keys_refused_total`). Metas hold the registry's one copy of each key
//! (an `Arc<str>`), so a segment costs a pointer per key, not a string. Keys no sealed segment
//! within the retention holds are pruned with it.

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::metrics;

/// An attribute key as segment metas hold it: shared with the registry.
pub use crate::model::Key;

/// Distinct attribute keys within the retention, by default. Semantic conventions define a few
/// hundred; a large estate with custom keys a few thousand.
pub const MAX_ATTRIBUTE_KEYS: usize = 20_000;

/// Longest attribute key kept (bytes). Keys are names: semantic-convention keys are under 64
/// bytes, and a longer one is dropped, not cut, so that two long keys never merge into one.
pub const MAX_KEY_BYTES: usize = 256;

pub struct AttributeKeys {
    max: usize,
    /// Key → the latest partition a sealed segment holds it in; 0 while only admitted.
    keys: RwLock<FxHashMap<Key, u64>>,
}

impl AttributeKeys {
    pub fn new(max: usize) -> Self {
        Self { max, keys: RwLock::new(FxHashMap::default()) }
    }

    /// Whether a span may carry `key`: it is known, or new with room left. A refused key is
    /// counted; the caller drops the attribute.
    pub fn admit(&self, key: &str) -> bool {
        if key.len() > MAX_KEY_BYTES {
            return false;
        }
        if self.keys.read().contains_key(key) {
            return true;
        }
        let mut keys = self.keys.write();
        if keys.contains_key(key) {
            return true;
        }
        if keys.len() >= self.max {
            metrics::attribute_key_refused();
            return false;
        }
        keys.insert(Key::from(key), 0);
        metrics::attribute_keys(keys.len());
        true
    }

    /// Replaces each key by the registry's copy and records that partition `part` holds it. Keys
    /// from sealed segments and recovered spans are taken in whatever the cap (they were admitted
    /// once), so the registry can exceed it by what a restart under a lowered cap brings back.
    pub fn intern(&self, keys: &mut [Key], part: u64) {
        if keys.is_empty() {
            return;
        }
        let mut map = self.keys.write();
        for k in keys.iter_mut() {
            match map.get_key_value(&**k) {
                Some((shared, _)) => *k = shared.clone(),
                None => {
                    map.insert(k.clone(), part);
                }
            }
            if let Some(p) = map.get_mut(&**k) {
                *p = (*p).max(part);
            }
        }
        metrics::attribute_keys(map.len());
    }

    /// Forgets keys that no segment of a partition at or above `floor` holds; returns how many.
    /// Keys admitted but not sealed yet stay: forgetting them would let a flood past the cap
    /// again at every pass.
    pub fn prune(&self, floor: u64) -> usize {
        let mut map = self.keys.write();
        let before = map.len();
        map.retain(|_, p| *p == 0 || *p >= floor);
        metrics::attribute_keys(map.len());
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.keys.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for AttributeKeys {
    fn default() -> Self {
        Self::new(MAX_ATTRIBUTE_KEYS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn admits_up_to_the_cap_then_refuses_new_keys_only() {
        let reg = AttributeKeys::new(2);
        assert!(reg.admit("a") && reg.admit("b"));
        assert!(!reg.admit("c"), "past the cap");
        assert!(reg.admit("a"), "a known key is always admitted");
        assert!(!reg.admit(&"k".repeat(MAX_KEY_BYTES + 1)), "too long");
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn metas_share_one_copy_and_pruning_follows_the_partitions() {
        let reg = AttributeKeys::new(10);
        let mut a: Vec<Key> = vec!["http.route".into(), "db.system".into()];
        let mut b: Vec<Key> = vec!["http.route".into()];
        reg.intern(&mut a, 5);
        reg.intern(&mut b, 9);
        assert!(Arc::ptr_eq(&a[0], &b[0]));
        assert_eq!(reg.prune(6), 1, "db.system is held only by partition 5");
        assert!(reg.admit("http.route") && reg.len() == 1);
        assert!(reg.admit("new"));
        assert_eq!(reg.prune(6), 0, "admitted, not sealed yet: kept");
        let mut c: Vec<Key> = vec!["new".into()];
        reg.intern(&mut c, 10);
        assert_eq!(reg.prune(10), 1, "http.route was last sealed in partition 9");
        assert_eq!(reg.len(), 1);
    }
}
