//! The GGUF reader: a hostile model file gives a typed error, never a panic, and reading its
//! header allocates in proportion to the file's own size, never to the lengths and counts it
//! declares.
//!
//! A counting global allocator measures the peak bytes held while the header is read. The
//! bound is linear in the file size rather than equal to it: candle decodes each metadata
//! array element into a 32-byte `Value` and grows the array by doubling, so an array of
//! one-byte elements legitimately takes up to 64 bytes per file byte. A length or count
//! trusted without a check against the bytes left shows up as an allocation far above it.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the same layout; the counters are only
// bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let grow = new_size - layout.size();
            let now = CURRENT.fetch_add(grow, Ordering::Relaxed) + grow;
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc`; `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes allowed per file byte while the header is read (see the file comment).
const PER_BYTE: usize = 64;
/// Fixed allowance: hash maps' first tables, error messages, the path.
const FIXED: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let header = llmkit_local::fuzz_gguf(data, false);
    let used = PEAK.load(Ordering::Relaxed) - before;
    let allowed = PER_BYTE * data.len() + FIXED;
    assert!(
        used <= allowed,
        "reading a {}-byte GGUF header held {used} bytes at its peak (allowed {allowed})",
        data.len()
    );
    // The tokenizer built from the metadata: no panic (its size is the vocabulary's, which
    // the header check above has already bounded by the file).
    if header.is_ok()
        && let Err(e) = llmkit_local::fuzz_gguf(data, true)
    {
        let _ = (e.to_string(), e.hint());
    }
});
