//! Custom-achievement conditions: whatever parses must survive a round
//! trip through its stored JSON unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use questline::achievements::condition::Condition;

const KINDS: [&str; 6] =
    ["complete_games", "playtime", "achievement_count", "specific_achievements", "completion_rate", "other"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else { return };
    let kind = KINDS[usize::from(selector) % KINDS.len()];
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    if let Ok(condition) = Condition::parse(kind, &value) {
        let again = Condition::parse(condition.kind(), &condition.to_json()).expect("a stored condition parses");
        assert_eq!(again, condition);
        let _ = condition.appids();
    }
});
