//! The distinct strings of a batch or a page, numbered by first appearance: the dictionary behind
//! the log's name table and the pages' string columns.

use rustc_hash::FxHashMap;

/// Codes of distinct strings, found by address before text. The strings a batch or a page holds
/// are mostly shared copies (decoders intern them per request), so most lookups end at a slot
/// without reading the text, which in a memtable of a million spans is a cache miss, or hashing it.
///
/// Every string passed in is borrowed for `'a`, all alive at once: two of them at the same address
/// and of the same length have the same text.
pub struct Distinct<'a> {
    codes: FxHashMap<&'a str, u32>,
    list: Vec<&'a str>,
    /// (address, length, code) of the last string seen at each slot.
    recent: Vec<(usize, usize, u32)>,
    /// `64 - log2(recent.len())`: a slot is the top bits of the address's Fibonacci hash.
    shift: u32,
}

impl<'a> Distinct<'a> {
    /// For about `n` lookups: the slots grow with them (a page of a dozen values does not clear
    /// thousands), up to 512, past the few hundred distinct names of a shop request's batch.
    pub fn with_capacity(n: usize) -> Self {
        let slots = n.next_power_of_two().clamp(16, 512);
        Self {
            codes: FxHashMap::default(),
            list: Vec::new(),
            recent: vec![(0, 0, 0); slots],
            shift: 64 - slots.trailing_zeros(),
        }
    }

    /// Room for `distinct` strings without growing: each growth hashes every string in again.
    pub fn room_for(mut self, distinct: usize) -> Self {
        self.codes.reserve(distinct);
        self.list.reserve(distinct);
        self
    }

    /// The code of `s`: its index in `list`, which it joins if new. Inlined into its callers, it
    /// is the slot check alone: most lookups end there, and a call cost more than the check.
    #[inline]
    pub fn code(&mut self, s: &'a str) -> u32 {
        let (ptr, len) = (s.as_ptr() as usize, s.len());
        // Fibonacci hashing: allocations are aligned alike, so their low bits collide.
        let slot = ((ptr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        let (p, l, code) = self.recent[slot];
        // Empty strings share one dangling address: those go through the text, once.
        if p == ptr && l == len && len > 0 {
            return code;
        }
        self.code_by_text(s, slot)
    }

    /// The code of a string not in its slot, by its text.
    #[cold]
    #[inline(never)]
    fn code_by_text(&mut self, s: &'a str, slot: usize) -> u32 {
        let next = self.list.len() as u32;
        let code = *self.codes.entry(s).or_insert(next);
        if code == next {
            self.list.push(s);
        }
        self.recent[slot] = (s.as_ptr() as usize, s.len(), code);
        code
    }

    /// The distinct strings, in order of first appearance (their codes).
    pub fn list(&self) -> &[&'a str] {
        &self.list
    }
}

/// Whether two strings alive at once have the same text: by address first.
pub fn same(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Codes are first-appearance indexes of the text, whether strings share an address or
        /// are separate copies of the same text.
        #[test]
        fn codes_follow_the_text_not_the_address(picks in proptest::collection::vec((0usize..40, any::<bool>()), 0..2000)) {
            let shared: Vec<Arc<str>> = (0..40).map(|i| Arc::from(if i == 0 { String::new() } else { format!("v{i}") })).collect();
            let copies: Vec<Arc<str>> = picks.iter().map(|(i, _)| Arc::from(&*shared[*i])).collect();
            let strs: Vec<&str> = picks.iter().zip(&copies).map(|((i, own), c)| if *own { &**c } else { &*shared[*i] }).collect();
            let mut d = Distinct::with_capacity(strs.len());
            let mut expected: Vec<&str> = Vec::new();
            for s in &strs {
                let code = d.code(s) as usize;
                let want = expected.iter().position(|e| e == s).unwrap_or_else(|| { expected.push(s); expected.len() - 1 });
                prop_assert_eq!(code, want);
            }
            prop_assert_eq!(d.list(), &expected[..]);
        }
    }

    #[test]
    fn same_is_text_equality() {
        let a: Arc<str> = Arc::from("GET");
        let b: Arc<str> = Arc::from("GET");
        assert!(same(&a, &a) && same(&a, &b));
        assert!(!same(&a, &a[..2]) && !same("", "x") && same("", &a[..0]));
    }
}
