//! The upload pipeline: any bytes are refused with a reason or become a
//! clean image within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use questline::images::process::{process, MAX_SIDE};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = process(data) {
        assert!(p.width <= MAX_SIDE && p.height <= MAX_SIDE);
        assert!(!p.bytes.is_empty() && !p.thumb.is_empty());
    }
});
