//! Byte-level encodings: the row codec of the write-ahead log and the column codecs of sealed
//! segments. Every decoder treats its input as untrusted: a corrupt chunk is an error, never a
//! panic or an unbounded allocation.

pub mod column;
pub(crate) mod distinct;
pub mod row;
pub mod varint;

use crate::error::StorageError;

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn u8(&mut self) -> Result<u8, StorageError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| corrupt("unexpected end"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if n > self.remaining() {
            return Err(corrupt("length past end"));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], StorageError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, StorageError> {
        // One byte is the common case (small counts, deltas, lengths).
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let (v, n) = varint::decode(&self.buf[self.pos..]).ok_or_else(|| corrupt("bad varint"))?;
        self.pos += n;
        Ok(v)
    }

    pub fn varint_u32(&mut self) -> Result<u32, StorageError> {
        u32::try_from(self.varint()?).map_err(|_| corrupt("u32 out of range"))
    }

    /// A count that is about to size an allocation: it may not exceed what the input could hold.
    pub fn count(&mut self, min_bytes_each: usize) -> Result<usize, StorageError> {
        let n = self.varint()? as usize;
        if n.saturating_mul(min_bytes_each.max(1)) > self.remaining() {
            return Err(corrupt("count larger than input"));
        }
        Ok(n)
    }

    pub fn str(&mut self) -> Result<&'a str, StorageError> {
        let n = self.varint()? as usize;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| corrupt("invalid utf-8"))
    }

    pub fn string(&mut self) -> Result<String, StorageError> {
        self.str().map(str::to_owned)
    }
}

pub fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    varint::put(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A dictionary's strings (a page's, or a log record's name table): their count, then each with
/// its length.
pub(crate) fn put_strs(out: &mut Vec<u8>, strs: &[&str]) {
    varint::put(out, strs.len() as u64);
    for s in strs {
        put_str(out, s);
    }
}
