//! The binary's allocator: mimalloc, asked the way its fast paths expect.
//!
//! Small short-lived allocations (headers, JSON, records) dominate a forwarded request,
//! and mimalloc serves them from thread-local pages. The `mimalloc` crate's
//! `GlobalAlloc` asks for every block through `mi_malloc_aligned`, whose fast path
//! covers only blocks up to 1 KiB: a larger one whose size is not a power of two (a
//! boxed request future, a header map) was over-allocated by its alignment and cut to
//! it, about ten times per forwarded request (`scripts/bench/instructions.sh`). Plain
//! `mi_malloc` already returns every block aligned to 8 bytes, so only stricter
//! alignments take the aligned calls here.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Every block mimalloc returns is aligned to at least this.
const MIN_ALIGN: usize = std::mem::size_of::<usize>();

pub struct Allocator;

// SAFETY: each call hands mimalloc's block straight back, aligned as asked (plain calls
// only when `MIN_ALIGN` covers the layout's alignment), and every block is freed or
// resized by mimalloc, whichever call made it.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes_when_resized() {
        let allocator = Allocator;
        for align in [1, 2, 8, 16, 64, 4096] {
            for size in [1, 7, 24, 1000, 1500, 3000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = allocator.alloc_zeroed(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size}, align {align}");
                    assert!((0..size).all(|i| *p.add(i) == 0));
                    p.write_bytes(0xab, size);
                    let q = allocator.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "resized, size {size}, align {align}");
                    assert!((0..size).all(|i| *q.add(i) == 0xab));
                    let grown = Layout::from_size_align(size * 3, align).unwrap();
                    allocator.dealloc(q, grown);
                }
            }
        }
    }
}
