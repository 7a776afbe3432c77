//! users.json and the custom achievements in the legacy JSON files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use questline::import::source;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = source::parse_json(data, "users.json") {
        if let Ok(users) = source::users_from_json(value.clone()) {
            assert!(users.windows(2).all(|w| w[0].name.as_bytes() <= w[1].name.as_bytes()));
        }
        // Every entry of custom_achievements.json goes through the same
        // condition parser as the web form.
        if let Some(map) = value.as_object() {
            for entries in map.values() {
                for entry in entries.as_array().into_iter().flatten() {
                    let kind = entry.get("condition_type").and_then(|k| k.as_str()).unwrap_or("");
                    let data = entry.get("condition_data").cloned().unwrap_or_default();
                    let _ = questline::achievements::condition::Condition::parse(kind, &data);
                }
            }
        }
    }
});
