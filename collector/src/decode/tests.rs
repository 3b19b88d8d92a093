//! Admission while decoding (`meter`): payments in order and ahead of what decoding builds, a
//! refusal stopping it where it is, the census's answer after a part-way refusal, whole pricing
//! past `METERED_UP_TO`.

use prost::Message;
use rewind_agent_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use rewind_agent_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use rewind_agent_proto::ExportTraceServiceRequest;
use rewind_storage::AttributeKeys;

use crate::census;
use crate::convert::Limits;
use crate::decode::{decode, Rules, METERED_UP_TO};
use crate::error::CollectorError;
use crate::ingest::{Format, Payload};
use crate::meter::{Bill, Meter};
use crate::wire::{convert_metered, REFUSED};

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
        let e = decode(&body, Payload::Traces(Format::Protobuf), &rules, &mut pay).map(|d| d.batch.len()).unwrap_err();
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
