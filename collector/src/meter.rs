//! Admission while decoding. The census prices a request before it is decoded, in a walk of its
//! own over every byte; for OTLP/protobuf traces, the request most agents send, that walk cost
//! 1,385 instructions a span, a twentieth of the ingest path. For those up to
//! `decode::METERED_UP_TO`, the wire decoder counts instead what it reads, field by field as the
//! census counts it, prices each item with the census's prices, and pays as the count grows:
//! whatever it builds is paid for before it has grown past one item more, however the request is
//! shaped. A request the budget refuses part way is then priced whole by the census
//! (`decode::refusal`), so that it is answered as the census would have answered it before
//! decoding: too large, or "retry later".

use crate::census::{price, Census};
use crate::error::CollectorError;

/// What a request has cost so far, for the payer to cover.
pub struct Bill<'c> {
    /// Bytes the request takes so far; what must be paid.
    pub due: usize,
    /// What to pay, if the budget admits it: more than is due, so that a growing request pays a
    /// few times, not at every item.
    pub ahead: usize,
    /// What the bytes are.
    pub items: &'c Census,
    /// Whether `items` is the whole request (the census), or what decoding has reached.
    pub complete: bool,
}

impl Bill<'_> {
    pub fn describe(&self) -> String {
        if self.complete {
            self.items.describe()
        } else {
            format!("at least {}", self.items.describe())
        }
    }
}

/// Covers a bill: the amount now paid for, at least `due`, or why it cannot be.
pub type Pay<'p> = &'p mut dyn FnMut(&Bill<'_>) -> Result<usize, CollectorError>;

/// Paid ahead: an eighth of what is due, and this much more.
const AHEAD: usize = 64 << 10;

/// Why decoding stops when the payer refuses: the payer's error is kept in the meter
/// (`take_refusal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Counts and pays for what the wire decoder builds.
pub struct Meter<'p> {
    counts: Census,
    due: usize,
    paid: usize,
    pay: Option<Pay<'p>>,
    refusal: Option<CollectorError>,
}

impl<'p> Meter<'p> {
    /// For a request of `wire` bytes, which are due at once (`Census::decoded_bytes`).
    pub fn new(wire: usize, pay: Pay<'p>) -> Self {
        let counts = Census::default();
        Self { due: counts.decoded_bytes(wire), counts, paid: 0, pay: Some(pay), refusal: None }
    }

    /// Counts without paying: for tests and decoders of what was admitted otherwise.
    pub fn unbounded(wire: usize) -> Self {
        let counts = Census::default();
        Self { due: counts.decoded_bytes(wire), counts, paid: usize::MAX, pay: None, refusal: None }
    }

    /// What has been counted.
    pub fn items(&self) -> &Census {
        &self.counts
    }

    /// Bytes the request takes by what has been counted: `Census::decoded_bytes` of it.
    pub fn due(&self) -> usize {
        self.due
    }

    /// The payer's refusal, when decoding stopped at `Refused`.
    pub fn take_refusal(&mut self) -> Option<CollectorError> {
        self.refusal.take()
    }

    /// Pays what is due before anything is read: the request's own bytes.
    pub fn open(&mut self) -> Result<(), Refused> {
        self.add(0)
    }

    #[inline]
    fn add(&mut self, price: usize) -> Result<(), Refused> {
        self.due += price;
        if self.due > self.paid {
            return self.settle();
        }
        Ok(())
    }

    #[cold]
    fn settle(&mut self) -> Result<(), Refused> {
        let Some(pay) = self.pay.as_mut() else { return Ok(()) };
        let bill = Bill {
            due: self.due,
            ahead: self.due.saturating_add(self.due / 8 + AHEAD),
            items: &self.counts,
            complete: false,
        };
        match pay(&bill) {
            Ok(paid) => {
                self.paid = paid.max(self.due);
                Ok(())
            }
            Err(e) => {
                self.refusal = Some(e);
                Err(Refused)
            }
        }
    }

    #[inline]
    pub fn resource(&mut self) -> Result<(), Refused> {
        self.counts.resources += 1;
        self.add(price::RESOURCE)
    }

    #[inline]
    pub fn scope(&mut self) -> Result<(), Refused> {
        self.counts.scopes += 1;
        self.add(price::SCOPE)
    }

    #[inline]
    pub fn span(&mut self) -> Result<(), Refused> {
        self.counts.spans += 1;
        self.add(price::SPAN)
    }

    #[inline]
    pub fn event(&mut self) -> Result<(), Refused> {
        self.counts.events += 1;
        self.add(price::EVENT)
    }

    #[inline]
    pub fn link(&mut self) -> Result<(), Refused> {
        self.counts.links += 1;
        self.add(price::LINK)
    }

    #[inline]
    pub fn attribute(&mut self) -> Result<(), Refused> {
        self.counts.attributes += 1;
        self.add(price::ATTRIBUTE)
    }

    /// An attribute of a key and one plain value, text or scalar, in one step: its key, its value
    /// and the value's text are what the census counts for it.
    #[inline]
    pub fn plain_attribute(&mut self, text: bool) -> Result<(), Refused> {
        let strings = 1 + usize::from(text);
        self.counts.attributes += 1;
        self.counts.values += 1;
        self.counts.strings += strings;
        self.add(price::ATTRIBUTE + price::VALUE + strings * price::STRING)
    }

    #[inline]
    pub fn value(&mut self) -> Result<(), Refused> {
        self.counts.values += 1;
        self.add(price::VALUE)
    }

    /// `n` strings or byte strings (each its own allocation once converted).
    #[inline]
    pub fn strings(&mut self, n: usize) -> Result<(), Refused> {
        self.counts.strings += n;
        self.add(n * price::STRING)
    }
}
