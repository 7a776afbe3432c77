//! A legacy library file: any bytes must parse to rows and skips, or a
//! reason the whole file is refused; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(lib) = questline::import::source::parse_library(data) {
        for (line, _) in &lib.skipped {
            assert!(*line >= 1, "skips name a real line");
        }
        for game in lib.games.values() {
            assert!(game.playtime_minutes >= 0);
        }
    }
});
