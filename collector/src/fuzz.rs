//! Bodies of the fuzz targets over what the collector decodes (`fuzz/`), shared with the test
//! that replays the fuzzer's kept inputs (`fuzz/regressions/`). Arbitrary bytes in: an error or a
//! partial success out, never a panic, and every span or record accepted goes through the
//! write-ahead log and a sealed segment unchanged.

use prost::Message;
use rewind_agent_proto::agent::ExportXLogRequest;
use rewind_agent_proto::ExportTraceServiceRequest;

use crate::convert::{convert, Limits};
use rewind_storage::AttributeKeys;

/// A fixed "now", so that an input converts the same way on every run.
const NOW: u64 = 1_800_000_000_000_000_000;

/// Differential: the wire decoder the server uses and prost + `convert` must refuse the same
/// inputs and agree on the rest; and its meter must count what the census counts.
pub fn otlp_protobuf(data: &[u8]) {
    let limits = Limits::default();
    let (keys_a, keys_b) = (AttributeKeys::new(64), AttributeKeys::new(64));
    let reference = ExportTraceServiceRequest::decode(data).map(|req| convert(req, &limits, &keys_a, NOW, 0));
    let mut meter = crate::meter::Meter::unbounded(data.len());
    match (reference, crate::wire::convert_metered(data, &limits, &keys_b, NOW, 0, &mut meter)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "prost and wire disagree");
            // What admission charges is what the census would have charged.
            if let Ok(census) = crate::census::otlp_protobuf(data) {
                assert_eq!(meter.items(), &census, "the meter and the census count differently");
            }
            assert_eq!(keys_a.len(), keys_b.len());
            assert_eq!(b.rejected == 0, b.message().is_empty());
            rewind_storage::fuzz::round_trip_spans(&b.items);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("prost {:?} but wire {:?}", a.map(|c| c.items.len()), b.map(|c| c.items.len())),
    }
}

pub fn otlp_json(data: &[u8]) {
    if let Ok(req) = crate::json::decode(data) {
        spans(req);
    }
}

pub fn xlog_native(data: &[u8]) {
    if let Ok(req) = ExportXLogRequest::decode(data) {
        let converted = crate::xlog::convert(req, &Limits::default(), &AttributeKeys::default(), NOW, 0);
        assert_eq!(converted.rejected == 0, converted.message().is_empty());
        rewind_storage::fuzz::round_trip_xlogs(&converted.items);
    }
}

/// Zipkin v2, JSON (first byte even) or protobuf (odd): the census that prices the body before
/// it is read must not count fewer spans or annotations than the translation builds (admission
/// would undercharge; in JSON an annotation is priced as the object it is), and what translates
/// converts and round-trips as OTLP does.
pub fn zipkin(data: &[u8]) {
    let Some((&format, body)) = data.split_first() else { return };
    let (census, translated) = if format % 2 == 0 {
        (crate::census::zipkin_json(body), crate::zipkin::from_json(body))
    } else {
        (crate::census::zipkin_protobuf(body), crate::zipkin::from_protobuf(body))
    };
    let Ok(req) = translated else { return };
    if let Ok(c) = census {
        let spans = req.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
        let (n, events) = spans.fold((0, 0), |(n, e), s| (n + 1, e + s.events.len()));
        assert!(
            c.spans >= n && c.events + c.json_objects >= events,
            "the census counts less than {n} spans, {events} events: {c:?}"
        );
    }
    spans(req);
}

fn spans(req: ExportTraceServiceRequest) {
    let converted = convert(req, &Limits::default(), &AttributeKeys::default(), NOW, 0);
    assert_eq!(converted.rejected == 0, converted.message().is_empty());
    rewind_storage::fuzz::round_trip_spans(&converted.items);
}
