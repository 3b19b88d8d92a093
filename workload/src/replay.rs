//! Pre-encoded requests sent again as new traces. A collector rightly takes the same request
//! sent twice for a retry (Rewind acknowledges it and stores nothing), so a load that replays
//! encoded requests gives each round fresh trace ids: the bytes are copied and the trace ids
//! patched in place, which costs a memcpy, not an encoding.

use bytes::Bytes;
use rewind_agent_proto::ExportTraceServiceRequest;

/// An encoded export request and where its spans' trace ids are.
#[derive(Clone)]
pub struct Replayable {
    bytes: Bytes,
    trace_ids: Vec<usize>,
    pub spans: u64,
}

impl Replayable {
    pub fn new(req: &ExportTraceServiceRequest) -> Self {
        Self::from_encoded(Bytes::from(prost::Message::encode_to_vec(req)))
            .expect("a request prost encoded is well formed")
    }

    /// From the bytes of an export request; `None` if they do not parse as one.
    pub fn from_encoded(bytes: Bytes) -> Option<Self> {
        let mut trace_ids = Vec::new();
        // ExportTraceServiceRequest.resource_spans = 1 → ResourceSpans.scope_spans = 2 →
        // ScopeSpans.spans = 2 → Span.trace_id = 1.
        for rs in fields(&bytes, 0, bytes.len(), 1)? {
            for ss in fields(&bytes, rs.0, rs.1, 2)? {
                for span in fields(&bytes, ss.0, ss.1, 2)? {
                    for id in fields(&bytes, span.0, span.1, 1)? {
                        if id.1 - id.0 == 16 {
                            trace_ids.push(id.0);
                        }
                    }
                }
            }
        }
        let spans = trace_ids.len() as u64;
        Some(Self { bytes, trace_ids, spans })
    }

    /// The request for round `round`: round 0 as encoded, every other with the last 8 bytes of
    /// each trace id XORed with the round (every span of a trace alike, so traces stay whole).
    pub fn round(&self, round: u64) -> Bytes {
        if round == 0 {
            return self.bytes.clone();
        }
        let mut v = self.bytes.to_vec();
        let x = round.to_le_bytes();
        for &at in &self.trace_ids {
            for (b, x) in v[at + 8..at + 16].iter_mut().zip(x) {
                *b ^= x;
            }
        }
        Bytes::from(v)
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The (start, end) of every length-delimited field `want` of the message in `buf[from..to]`;
/// `None` if the bytes are not a protobuf message.
fn fields(buf: &[u8], from: usize, to: usize, want: u64) -> Option<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let key = varint(buf, &mut at, to)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(buf, &mut at, to)?;
            }
            1 => at = at.checked_add(8)?,
            5 => at = at.checked_add(4)?,
            2 => {
                let len = usize::try_from(varint(buf, &mut at, to)?).ok()?;
                let end = at.checked_add(len)?;
                if end > to {
                    return None;
                }
                if field == want {
                    out.push((at, end));
                }
                at = end;
            }
            _ => return None,
        }
    }
    (at == to).then_some(out)
}

fn varint(buf: &[u8], at: &mut usize, to: usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if *at >= to {
            return None;
        }
        let b = buf[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Shop, ShopConfig};
    use prost::Message;

    #[test]
    fn each_round_is_the_same_traces_with_new_ids() {
        let req = Shop::new(ShopConfig { seed: 3, incident: None }).request(20, 1_000_000_000_000, 1_000_000);
        let r = Replayable::new(&req);
        assert_eq!(r.spans, crate::span_count(&req));
        assert_eq!(ExportTraceServiceRequest::decode(r.round(0)).unwrap(), req);
        let again = ExportTraceServiceRequest::decode(r.round(7)).unwrap();
        let ids = |q: &ExportTraceServiceRequest| -> Vec<(Vec<u8>, Vec<u8>)> {
            q.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| (s.trace_id.clone(), s.span_id.clone()))
                .collect()
        };
        let (before, after) = (ids(&req), ids(&again));
        assert_eq!(before.len(), after.len());
        for ((t0, s0), (t1, s1)) in before.iter().zip(&after) {
            assert_eq!(s0, s1);
            assert_eq!(t0[..8], t1[..8]);
            assert_ne!(t0, t1);
        }
        // Spans of one trace still share their (new) trace id.
        let distinct =
            |v: &[(Vec<u8>, Vec<u8>)]| v.iter().map(|x| &x.0).collect::<std::collections::HashSet<_>>().len();
        assert_eq!(distinct(&before), distinct(&after));
        assert!(Replayable::from_encoded(Bytes::from_static(&[0x0a, 0x05, 1])).is_none());
    }
}
