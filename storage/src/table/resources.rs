//! A segment's table of distinct resources (page 0 of its resource-table column), and each row's
//! index into it (the resource column).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::codec::column as col;
use crate::codec::row::{put_kvs, read_kvs};
use crate::codec::Reader;
use crate::error::StorageError;
use crate::model::Resource;

/// Distinct resources of a segment, each encoded once: rows of one request share an `Arc`, so
/// pointers are compared first, encodings second (the same resource arriving in many requests).
#[derive(Default)]
pub struct ResourceTable {
    pub encoded: Vec<Vec<u8>>,
    /// Every key the distinct resources use, in order of first appearance.
    pub keys: Vec<crate::model::Key>,
    by_ptr: FxHashMap<*const Resource, u64>,
    by_bytes: FxHashMap<Vec<u8>, u64>,
}

impl ResourceTable {
    /// The resource's index in the table.
    pub fn index(&mut self, r: &Arc<Resource>) -> u64 {
        if let Some(i) = self.by_ptr.get(&Arc::as_ptr(r)) {
            return *i;
        }
        let mut b = Vec::new();
        put_kvs(&mut b, &r.attributes);
        let i = match self.by_bytes.get(&b) {
            Some(i) => *i,
            None => {
                for (k, _) in &r.attributes {
                    if !self.keys.contains(k) {
                        self.keys.push(k.clone());
                    }
                }
                self.encoded.push(b.clone());
                let i = self.encoded.len() as u64 - 1;
                self.by_bytes.insert(b, i);
                i
            }
        };
        self.by_ptr.insert(Arc::as_ptr(r), i);
        i
    }

    /// The stored table body.
    pub fn encode(&self) -> Vec<u8> {
        col::encode_blobs(&self.encoded)
    }

    /// A stored table body of `count` resources.
    pub fn decode(body: &[u8], count: u32) -> Result<Vec<Arc<Resource>>, StorageError> {
        col::decode_blobs(body, count as usize)?
            .into_iter()
            .map(|b| Ok(Arc::new(Resource { attributes: read_kvs(&mut Reader::new(b))? })))
            .collect()
    }
}
