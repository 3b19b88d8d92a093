//! Trace and span ids (W3C trace context): their bytes, parsing from the wire and from hex, and
//! printing, in one place.

use std::fmt;
use std::str::FromStr;

/// Why bytes or text are not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {expected} bytes, got {got}")]
    Length { expected: usize, got: usize },
    #[error("is all zeros")]
    Zero,
    #[error("must be {expected} hexadecimal characters")]
    NotHex { expected: usize },
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $n:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            pub const LEN: usize = $n;

            pub const fn from_bytes(bytes: [u8; $n]) -> Self {
                Self(bytes)
            }

            pub const fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }

            /// An id as it arrives on the wire: exactly the right length, and not all zeros
            /// (the W3C "invalid" id).
            pub fn from_wire(bytes: &[u8]) -> Result<Self, IdError> {
                let id: [u8; $n] = bytes.try_into().map_err(|_| IdError::Length { expected: $n, got: bytes.len() })?;
                if id == [0; $n] {
                    return Err(IdError::Zero);
                }
                Ok(Self(id))
            }

            /// Lowercase or uppercase hex, exactly `2 * LEN` characters, not all zeros.
            pub fn parse_hex(s: &str) -> Result<Self, IdError> {
                let mut id = [0u8; $n];
                if s.len() != 2 * $n || hex::decode_to_slice(s, &mut id).is_err() {
                    return Err(IdError::NotHex { expected: 2 * $n });
                }
                if id == [0; $n] {
                    return Err(IdError::Zero);
                }
                Ok(Self(id))
            }
        }

        /// Lowercase hex, as OTLP/JSON and the query API write ids.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 2 * $n];
                hex::encode_to_slice(self.0, &mut buf).expect("sized for it");
                f.write_str(std::str::from_utf8(&buf).expect("hex is ASCII"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse_hex(s)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl From<[u8; $n]> for $name {
            fn from(bytes: [u8; $n]) -> Self {
                Self(bytes)
            }
        }
    };
}

id_type!(
    /// A trace id: 16 bytes.
    TraceId,
    16
);
id_type!(
    /// A span id: 8 bytes.
    SpanId,
    8
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_print_as_hex() {
        let t: TraceId = "5B8EFFF798038103D269B633813FC60C".parse().unwrap();
        assert_eq!(t.to_string(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(format!("{t:?}"), "TraceId(5b8efff798038103d269b633813fc60c)");
        assert_eq!(SpanId::parse_hex("eee19b7ec3c1b174").unwrap().0, [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
        for bad in ["", "abc", "5b8efff798038103d269b633813fc60", "zz8efff798038103d269b633813fc60c"] {
            assert_eq!(bad.parse::<TraceId>(), Err(IdError::NotHex { expected: 32 }), "{bad}");
        }
        assert_eq!("00000000000000000000000000000000".parse::<TraceId>(), Err(IdError::Zero));
    }

    #[test]
    fn wire_ids_are_checked() {
        assert_eq!(TraceId::from_wire(&[1; 16]), Ok(TraceId([1; 16])));
        assert_eq!(TraceId::from_wire(&[1; 15]).unwrap_err().to_string(), "must be 16 bytes, got 15");
        assert_eq!(SpanId::from_wire(&[0; 8]).unwrap_err().to_string(), "is all zeros");
    }
}
