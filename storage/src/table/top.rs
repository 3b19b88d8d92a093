//! Keeping the latest rows of a scan in bounded memory: a scan that wants the `limit` most recent
//! matches holds at most about twice that, and once it holds enough, nothing older than what it
//! keeps can enter (the *floor*), so whole pages and segments ending before it are skipped.

/// The floor of a scan that keeps the `limit` latest rows, and whether the limit cut some.
#[derive(Debug, Clone)]
pub struct Cutoff {
    pub limit: usize,
    floor: Option<u64>,
    truncated: bool,
}

impl Cutoff {
    pub fn new(limit: usize) -> Self {
        Self { limit, floor: None, truncated: false }
    }

    /// False for a time below the floor: nothing there can be kept.
    pub fn wants(&self, time: u64) -> bool {
        self.floor.is_none_or(|f| time >= f)
    }

    /// Like `wants`, and notes that something was cut when it cannot enter.
    pub fn admit(&mut self, time: u64) -> bool {
        let ok = self.wants(time);
        self.truncated |= !ok;
        ok
    }

    /// Something (a page, a segment) was skipped for ending below the floor.
    pub fn skipped(&mut self) {
        self.truncated = true;
    }

    /// Held items worth a cut: twice the limit.
    pub fn full(&self, held: usize) -> bool {
        held >= self.limit.max(1) * 2
    }

    /// After a cut from `held` items down to the limit, the earliest time kept is the new floor.
    pub fn cut(&mut self, held: usize, earliest_kept: Option<u64>) {
        if held > self.limit {
            self.truncated = true;
            self.floor = Some(earliest_kept.unwrap_or(u64::MAX));
        }
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn merge(&mut self, other: &Cutoff) {
        self.truncated |= other.truncated;
    }
}

/// The `limit` items with the latest times.
pub struct Latest<T> {
    pub cutoff: Cutoff,
    items: Vec<(u64, T)>,
}

impl<T> Latest<T> {
    /// `expect`: about how many items will be offered, to size the buffer once.
    pub fn new(limit: usize, expect: usize) -> Self {
        let items = Vec::with_capacity(expect.min(limit.saturating_mul(2)).min(1 << 24));
        Self { cutoff: Cutoff::new(limit), items }
    }

    pub fn wants(&self, time: u64) -> bool {
        self.cutoff.wants(time)
    }

    pub fn push(&mut self, time: u64, item: T) {
        if !self.cutoff.admit(time) {
            return;
        }
        self.items.push((time, item));
        if self.cutoff.full(self.items.len()) {
            self.cut();
        }
    }

    fn cut(&mut self) {
        let (held, limit) = (self.items.len(), self.cutoff.limit);
        if held <= limit {
            return;
        }
        let k = held - limit;
        if limit > 0 {
            self.items.select_nth_unstable_by_key(k, |(t, _)| *t);
        }
        self.items.drain(..k.min(held));
        self.cutoff.cut(held, self.items.iter().map(|(t, _)| *t).min());
    }

    /// Kept items with their times, oldest first, and whether the limit cut some.
    pub fn finish(mut self) -> (Vec<(u64, T)>, bool) {
        self.cut();
        self.items.sort_unstable_by_key(|(t, _)| *t);
        (self.items, self.cutoff.truncated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_keeps_the_limit_most_recent_and_raises_its_floor() {
        let mut l = Latest::new(3, 10);
        for t in [5u64, 1, 9, 7, 3, 8, 2, 6] {
            l.push(t, t * 10);
        }
        assert!(!l.wants(4), "a cut happened at 6 items: the floor is above 4");
        let (kept, truncated) = l.finish();
        assert_eq!(kept, vec![(7, 70), (8, 80), (9, 90)]);
        assert!(truncated);
        let (kept, truncated) = Latest::<()>::new(0, 0).finish();
        assert!(kept.is_empty() && !truncated);
        let mut zero = Latest::new(0, 4);
        zero.push(1, ());
        zero.push(2, ());
        assert_eq!(zero.finish(), (vec![], true));
    }
}
