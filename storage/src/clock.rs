//! Time as the store sees it. Wall-clock time is what span timestamps are compared with, but it
//! steps: NTP corrections, a VM resumed, an operator's typo. Durations (grace periods, backoff)
//! are measured on the monotonic clock instead, and retention follows a *horizon*: the wall clock
//! as last read, carried forward by monotonic time, that never moves backward and follows a
//! forward step by at most one partition per retention pass. A wall clock stepped a year ahead
//! thus cannot wipe the store in one pass, and one stepped back cannot pin pending work forever.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Wall-clock time in Unix nanoseconds.
    fn wall_ns(&self) -> u64;
    /// Nanoseconds since an arbitrary origin; never decreases.
    fn mono_ns(&self) -> u64;
}

/// Wall-clock time in Unix nanoseconds, from the system clock.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn wall_ns(&self) -> u64 {
        now_ns()
    }

    fn mono_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

impl fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock {{ wall_ns: {}, mono_ns: {} }}", self.wall_ns(), self.mono_ns())
    }
}

/// A clock a test sets by hand: the wall clock can be stepped either way, while monotonic time
/// only advances.
#[derive(Debug)]
pub struct ManualClock {
    wall: AtomicU64,
    mono: AtomicU64,
}

impl ManualClock {
    pub fn new(wall_ns: u64) -> Self {
        Self { wall: AtomicU64::new(wall_ns), mono: AtomicU64::new(1) }
    }

    /// Time passes: both clocks move forward together.
    pub fn advance(&self, ns: u64) {
        self.wall.fetch_add(ns, Ordering::SeqCst);
        self.mono.fetch_add(ns, Ordering::SeqCst);
    }

    /// The wall clock is set to another time; no time passes.
    pub fn set_wall(&self, wall_ns: u64) {
        self.wall.store(wall_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ns(&self) -> u64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn mono_ns(&self) -> u64 {
        self.mono.load(Ordering::SeqCst)
    }
}

/// A wall clock within this of where monotonic time says it should be has not stepped.
const STEP_TOLERANCE_NS: u64 = 60_000_000_000;

/// The retention horizon (see the module comment).
#[derive(Debug, Clone, Copy)]
pub struct Horizon {
    at_ns: u64,
    mono_ns: u64,
}

/// What one reading of the clocks found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    None,
    /// The wall clock is ahead of the horizon by this much; the horizon follows gradually.
    Forward(u64),
    /// The wall clock is behind the horizon by this much; the horizon waits for it.
    Backward(u64),
}

impl Horizon {
    /// `persisted`: the horizon a previous run reached, if any.
    pub fn new(persisted: Option<u64>, wall_ns: u64, mono_ns: u64) -> Self {
        Self { at_ns: persisted.unwrap_or(wall_ns), mono_ns }
    }

    pub fn at_ns(&self) -> u64 {
        self.at_ns
    }

    /// The horizon carried forward by the monotonic time since it was last advanced.
    pub fn projected(&self, mono_ns: u64) -> u64 {
        self.at_ns.saturating_add(mono_ns.saturating_sub(self.mono_ns))
    }

    /// Moves the horizon to the wall clock, by at most `max_jump` beyond monotonic time.
    pub fn advance(&mut self, wall_ns: u64, mono_ns: u64, max_jump: u64) -> Step {
        let expected = self.projected(mono_ns);
        let (next, step) = if wall_ns > expected.saturating_add(STEP_TOLERANCE_NS) {
            (expected.saturating_add(max_jump).min(wall_ns), Step::Forward(wall_ns - expected))
        } else if wall_ns.saturating_add(STEP_TOLERANCE_NS) < self.at_ns {
            (self.at_ns, Step::Backward(self.at_ns - wall_ns))
        } else {
            (wall_ns.max(self.at_ns), Step::None)
        };
        *self = Self { at_ns: next, mono_ns };
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000_000_000;
    const HOUR: u64 = 60 * MIN;

    #[test]
    fn the_horizon_follows_a_steady_clock() {
        let mut h = Horizon::new(None, 1000 * HOUR, 0);
        assert_eq!(h.advance(1000 * HOUR + MIN / 2, MIN / 2, HOUR), Step::None);
        assert_eq!(h.at_ns(), 1000 * HOUR + MIN / 2);
    }

    #[test]
    fn a_forward_step_is_followed_one_jump_per_pass() {
        let mut h = Horizon::new(None, 1000 * HOUR, 0);
        let wall = 1000 * HOUR + 365 * 24 * HOUR;
        assert!(matches!(h.advance(wall, MIN, HOUR), Step::Forward(_)));
        assert_eq!(h.at_ns(), 1000 * HOUR + MIN + HOUR);
        for _ in 0..10 {
            h.advance(wall, MIN, HOUR);
        }
        assert_eq!(h.at_ns(), 1000 * HOUR + MIN + 11 * HOUR);
    }

    #[test]
    fn a_backward_step_holds_the_horizon_until_the_wall_catches_up() {
        let mut h = Horizon::new(Some(1000 * HOUR), 1000 * HOUR, 0);
        assert!(matches!(h.advance(990 * HOUR, MIN, HOUR), Step::Backward(_)));
        assert_eq!(h.at_ns(), 1000 * HOUR);
        assert_eq!(h.projected(2 * MIN), 1000 * HOUR + MIN);
        h.advance(1000 * HOUR + 5 * MIN, 3 * MIN, HOUR);
        assert_eq!(h.at_ns(), 1000 * HOUR + 5 * MIN);
    }
}
