//! A counting global allocator, for the memory-per-resource benchmark.
//!
//! Counting is off by default, so the other benchmarks pay one relaxed load per allocation and
//! no shared-counter traffic between the two cores. While it is on, every allocation adds its
//! requested size to a global counter and every deallocation subtracts it: the counter is the
//! net number of bytes allocated since counting started (the allocator's own rounding and
//! bookkeeping are not included, so real resident memory is somewhat higher).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The system allocator, counting live bytes while [`start`] is in effect.
pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn note(delta: isize) {
    if ENABLED.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

fn size_of_layout(layout: Layout) -> isize {
    // A `Layout`'s size never exceeds `isize::MAX`.
    layout.size() as isize
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; counting only touches atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note(size_of_layout(layout));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note(size_of_layout(layout));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) };
        note(-size_of_layout(layout));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged (see the impl).
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            // `new_size` is valid for a layout of the same alignment, so at most `isize::MAX`.
            note(new_size as isize - size_of_layout(layout));
        }
        new_ptr
    }
}

/// Resets the counter to zero and starts counting.
///
/// Memory allocated before this call and freed while counting lowers the count, so the caller
/// must make sure little of it is freed in the window it measures.
pub fn start() {
    LIVE.store(0, Ordering::Relaxed);
    ENABLED.store(true, Ordering::SeqCst);
}

/// The net bytes allocated since [`start`].
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Stops counting.
pub fn stop() {
    ENABLED.store(false, Ordering::SeqCst);
}
