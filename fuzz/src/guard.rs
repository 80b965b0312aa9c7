//! The allocation bound of the fuzz targets: a global allocator that aborts (a crash to
//! libFuzzer and to the test harness) on any single allocation larger than 256 MiB plus the
//! input's size, so that a count or length read from a file can never size an allocation the
//! file's bytes do not back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

const BASE: usize = 256 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(BASE);

/// Sets the bound for the input about to run (256 MiB + its length).
pub fn input_len(n: usize) {
    LIMIT.store(BASE.saturating_add(n), Ordering::Relaxed);
}

/// The system allocator with the bound checked on every allocation and growth.
pub struct Guard;

fn check(size: usize) {
    if size > LIMIT.load(Ordering::Relaxed) {
        // No formatting here: it could allocate inside the allocator.
        let _ = std::io::stderr().write_all(b"fuzz guard: a single allocation exceeded 256 MiB + the input size\n");
        std::process::abort();
    }
}

unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
