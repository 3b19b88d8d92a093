//! The server's global allocator: mimalloc. Ingest allocates many small strings and vectors across
//! many threads, and mimalloc measured faster than glibc's malloc there.
//!
//! The `mimalloc` crate passes every allocation to `mi_malloc_aligned`, whatever its alignment.
//! For a block larger than 1 KiB whose size class is not a power of two, mimalloc's aligned path
//! cannot prove the alignment and over-allocates through its generic path, several times the
//! instructions of a plain `mi_malloc`. Every block mimalloc hands out is aligned to the word at
//! least (its size classes are multiples of it), so layouts that ask for no more take the plain
//! calls; only larger alignments take the aligned ones.

#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

use libmimalloc_sys as ffi;

/// What every block `mi_malloc` returns is aligned to.
const WORD: usize = core::mem::size_of::<usize>();

pub struct Allocator;

// SAFETY: every call is mimalloc's. A block from the plain calls is aligned to `WORD` at least,
// and they are used only where `layout.align() <= WORD`; `mi_free` and `mi_realloc` accept
// blocks from either family.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if layout.align() <= WORD {
                ffi::mi_malloc(layout.size()) as *mut u8
            } else {
                ffi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if layout.align() <= WORD {
                ffi::mi_zalloc(layout.size()) as *mut u8
            } else {
                ffi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { ffi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if layout.align() <= WORD {
                ffi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                ffi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    /// Every size class and path mimalloc has (small, over 1 KiB, huge), at every alignment a
    /// Rust type may ask for: aligned as asked, zeroed when asked, contents kept by `realloc`
    /// growing and shrinking.
    #[test]
    fn blocks_are_aligned_and_keep_their_contents() {
        let a = Allocator;
        for size in [1usize, 7, 8, 24, 40, 1000, 1025, 3000, 5000, 70_000, 5 << 20] {
            for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert!(!z.is_null() && z as usize % align == 0, "zeroed {size} at {align}");
                    assert!(core::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);

                    let p = a.alloc(layout);
                    assert!(!p.is_null() && p as usize % align == 0, "{size} at {align}");
                    let pattern: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
                    p.copy_from_nonoverlapping(pattern.as_ptr(), size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert!(!grown.is_null() && grown as usize % align == 0, "grown {size} at {align}");
                    assert_eq!(core::slice::from_raw_parts(grown, size), &pattern[..]);
                    let bigger = Layout::from_size_align(size * 3, align).unwrap();
                    let shrunk = a.realloc(grown, bigger, size.div_ceil(2));
                    assert!(!shrunk.is_null() && shrunk as usize % align == 0, "shrunk {size} at {align}");
                    assert_eq!(core::slice::from_raw_parts(shrunk, size.div_ceil(2)), &pattern[..size.div_ceil(2)]);
                    a.dealloc(shrunk, Layout::from_size_align(size.div_ceil(2), align).unwrap());
                }
            }
        }
    }
}
