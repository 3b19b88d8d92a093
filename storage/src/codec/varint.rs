//! LEB128 varints and zigzag, as protobuf uses them.

pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes one varint; `None` when truncated or longer than ten bytes.
pub fn decode(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(v: u64) {
            let mut out = Vec::new();
            put(&mut out, v);
            prop_assert_eq!(decode(&out), Some((v, out.len())));
        }

        #[test]
        fn zigzag_round_trips(v: i64) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
        }

        #[test]
        fn truncated_varint_is_none(v in 128u64..) {
            let mut out = Vec::new();
            put(&mut out, v);
            out.pop();
            prop_assert_eq!(decode(&out), None);
        }
    }
}
