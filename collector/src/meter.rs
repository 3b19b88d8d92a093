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
use crate::wire::WireError;

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

/// Why decoding stopped when the payer refused (the payer's error is kept in the meter).
pub const REFUSED: WireError = WireError("the ingest budget refused the request part way");

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

    /// The payer's refusal, when decoding stopped at `REFUSED`.
    pub fn take_refusal(&mut self) -> Option<CollectorError> {
        self.refusal.take()
    }

    /// Pays what is due before anything is read: the request's own bytes.
    pub fn open(&mut self) -> Result<(), WireError> {
        self.add(0)
    }

    #[inline]
    fn add(&mut self, price: usize) -> Result<(), WireError> {
        self.due += price;
        if self.due > self.paid {
            return self.settle();
        }
        Ok(())
    }

    #[cold]
    fn settle(&mut self) -> Result<(), WireError> {
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
                Err(REFUSED)
            }
        }
    }

    #[inline]
    pub fn resource(&mut self) -> Result<(), WireError> {
        self.counts.resources += 1;
        self.add(price::RESOURCE)
    }

    #[inline]
    pub fn scope(&mut self) -> Result<(), WireError> {
        self.counts.scopes += 1;
        self.add(price::SCOPE)
    }

    #[inline]
    pub fn span(&mut self) -> Result<(), WireError> {
        self.counts.spans += 1;
        self.add(price::SPAN)
    }

    #[inline]
    pub fn event(&mut self) -> Result<(), WireError> {
        self.counts.events += 1;
        self.add(price::EVENT)
    }

    #[inline]
    pub fn link(&mut self) -> Result<(), WireError> {
        self.counts.links += 1;
        self.add(price::LINK)
    }

    #[inline]
    pub fn attribute(&mut self) -> Result<(), WireError> {
        self.counts.attributes += 1;
        self.add(price::ATTRIBUTE)
    }

    /// An attribute of a key and one plain value, text or scalar, in one step: its key, its value
    /// and the value's text are what the census counts for it.
    #[inline]
    pub fn plain_attribute(&mut self, text: bool) -> Result<(), WireError> {
        let strings = 1 + usize::from(text);
        self.counts.attributes += 1;
        self.counts.values += 1;
        self.counts.strings += strings;
        self.add(price::ATTRIBUTE + price::VALUE + strings * price::STRING)
    }

    #[inline]
    pub fn value(&mut self) -> Result<(), WireError> {
        self.counts.values += 1;
        self.add(price::VALUE)
    }

    /// `n` strings or byte strings (each its own allocation once converted).
    #[inline]
    pub fn strings(&mut self, n: usize) -> Result<(), WireError> {
        self.counts.strings += n;
        self.add(n * price::STRING)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rewind_agent_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use rewind_agent_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use rewind_agent_proto::ExportTraceServiceRequest;
    use rewind_storage::AttributeKeys;

    use super::*;
    use crate::census;
    use crate::convert::Limits;
    use crate::wire::convert_metered;

    const NOW: u64 = 1_800_000_000_000_000_000;

    fn request(spans: usize) -> Vec<u8> {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        };
        let span = |i: usize| Span {
            trace_id: vec![1; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "GET /cart".into(),
            start_time_unix_nano: NOW - 2_000_000,
            end_time_unix_nano: NOW - 1_000_000,
            attributes: vec![kv("http.route", "/cart"), kv("user", &i.to_string())],
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: (0..spans).map(span).collect(), ..Default::default() }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn payment_keeps_ahead_of_decoding_and_ends_at_the_census_price() {
        let body = request(5_000);
        let mut bills = Vec::new();
        let mut paid = 0;
        let mut pay = |b: &Bill<'_>| {
            assert!(!b.complete && b.due > paid && b.ahead > b.due, "paid {paid}, billed {} ahead {}", b.due, b.ahead);
            bills.push((b.due, b.items.spans));
            paid = b.ahead;
            Ok(b.ahead)
        };
        let mut meter = Meter::new(body.len(), &mut pay);
        let (limits, keys) = (Limits::default(), AttributeKeys::default());
        let converted = convert_metered(&body, &limits, &keys, NOW, 0, &mut meter).unwrap();
        assert_eq!(converted.items.len(), 5_000);
        let census = census::otlp_protobuf(&body).unwrap();
        assert_eq!(meter.items(), &census);
        assert_eq!(meter.due(), census.decoded_bytes(body.len()));
        drop(meter);
        assert!(paid >= census.decoded_bytes(body.len()));
        // The request's own bytes first, before anything is read; then a few payments as it grows.
        assert_eq!(bills[0], (census::Census::default().decoded_bytes(body.len()), 0));
        assert!(bills.len() < 40, "{} payments", bills.len());
    }

    #[test]
    fn a_refused_payment_stops_decoding_where_it_is() {
        let body = request(20_000);
        let mut refused_at = None;
        let mut pay = |b: &Bill<'_>| {
            // The request's bytes, twice (about 3 MB), are due before anything is counted.
            if b.due > 4 << 20 {
                refused_at = Some(b.items.clone());
                return Err(CollectorError::Overloaded { queued: 0, budget: 4 << 20 });
            }
            Ok(b.ahead)
        };
        let mut meter = Meter::new(body.len(), &mut pay);
        let (limits, keys) = (Limits::default(), AttributeKeys::default());
        let e = convert_metered(&body, &limits, &keys, NOW, 0, &mut meter).map(|c| c.items.len()).unwrap_err();
        assert_eq!(e, REFUSED);
        assert!(matches!(meter.take_refusal(), Some(CollectorError::Overloaded { .. })));
        drop(meter);
        // Stopped within a payment of the limit: a few hundred of 20,000 spans counted, none decoded.
        let at = refused_at.unwrap();
        assert!(at.spans > 0 && at.spans < 2_000 && at.attributes == 0, "{at:?}");
    }

    /// Refused part way for want of room, a request too large for any budget is still answered
    /// "too large", with the census's whole counts; one that fits is told to retry.
    #[test]
    fn a_request_refused_part_way_is_answered_as_the_census_would() {
        use crate::decode::{decode, Rules};
        use crate::ingest::{Format, Payload};
        let body = request(10_000);
        assert!(body.len() <= crate::decode::METERED_UP_TO);
        let census = census::otlp_protobuf(&body).unwrap();
        let (limits, keys) = (Limits::default(), AttributeKeys::default());
        let rules = Rules { limits: &limits, keys: &keys, now_ns: NOW, min_start_ns: 0 };
        for (admissible, want_too_large) in [(census.decoded_bytes(body.len()) - 1, true), (usize::MAX, false)] {
            let mut pay = |b: &Bill<'_>| {
                if b.due > admissible {
                    return Err(CollectorError::DecodesTooLarge {
                        wire: body.len(),
                        decoded: b.due,
                        budget: admissible,
                        what: b.describe(),
                    });
                }
                // Others hold the rest of the budget while this one is being decoded.
                if !b.complete && b.due > 4 << 20 {
                    return Err(CollectorError::Overloaded { queued: 0, budget: 0 });
                }
                Ok(b.ahead)
            };
            let e =
                decode(&body, Payload::Traces(Format::Protobuf), &rules, &mut pay).map(|d| d.batch.len()).unwrap_err();
            match e {
                CollectorError::DecodesTooLarge { what, decoded, .. } if want_too_large => {
                    assert_eq!(what, "10000 spans, 20000 attributes, 20000 values, 1 resources");
                    assert_eq!(decoded, census.decoded_bytes(body.len()));
                }
                CollectorError::Overloaded { .. } if !want_too_large => {}
                e => panic!("{e}"),
            }
        }
    }

    /// An unknown group, which prost skips, is skipped at every size: by the meter (which counts
    /// nothing in it) and by the census (which counts nothing in it either, and prices the same).
    #[test]
    fn unknown_groups_are_skipped_by_meter_and_census_alike() {
        use crate::decode::{decode, Rules, METERED_UP_TO};
        use crate::ingest::{Format, Payload};
        let (limits, keys) = (Limits::default(), AttributeKeys::default());
        let rules = Rules { limits: &limits, keys: &keys, now_ns: NOW, min_start_ns: 0 };
        for spans in [10_000, 20_000] {
            // Field 20 as a group holding a varint and a string: start group, key 1 varint 7,
            // key 2 length 1 "x", end group.
            let mut body = request(spans);
            body.extend_from_slice(&[0xa3, 0x01, 0x08, 0x07, 0x12, 0x01, b'x', 0xa4, 0x01]);
            assert!(ExportTraceServiceRequest::decode(&body[..]).is_ok());
            let census = census::otlp_protobuf(&body).unwrap();
            let mut meter = Meter::unbounded(body.len());
            convert_metered(&body, &limits, &keys, NOW, 0, &mut meter).unwrap();
            assert_eq!(meter.items(), &census);
            let mut pay = |b: &Bill<'_>| Ok(b.ahead);
            assert_eq!(decode(&body, Payload::Traces(Format::Protobuf), &rules, &mut pay).unwrap().batch.len(), spans);
            assert_eq!(body.len() > METERED_UP_TO, spans == 20_000);
        }
    }

    /// Past `METERED_UP_TO`, the census prices a request before anything is decoded.
    #[test]
    fn a_large_request_is_priced_whole_before_decoding() {
        use crate::decode::{decode, Rules, METERED_UP_TO};
        use crate::ingest::{Format, Payload};
        let (limits, keys) = (Limits::default(), AttributeKeys::default());
        let rules = Rules { limits: &limits, keys: &keys, now_ns: NOW, min_start_ns: 0 };
        for spans in [10_000, 20_000] {
            let body = request(spans);
            let mut bills = Vec::new();
            let mut pay = |b: &Bill<'_>| {
                bills.push((b.complete, b.due));
                Ok(b.ahead)
            };
            assert_eq!(decode(&body, Payload::Traces(Format::Protobuf), &rules, &mut pay).unwrap().batch.len(), spans);
            let whole = census::otlp_protobuf(&body).unwrap().decoded_bytes(body.len());
            if body.len() > METERED_UP_TO {
                assert_eq!(bills, [(true, whole)]);
            } else {
                assert!(bills.len() > 1 && bills.iter().all(|(complete, due)| !complete && *due <= whole), "{bills:?}");
            }
        }
    }
}
