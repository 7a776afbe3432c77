//! The `next` parameter after sign-in: whatever comes in, what goes out is
//! a local path that a browser resolves to this site, and a valid header.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let base = url::Url::parse("https://questline.example/").unwrap();
    let out = questline::auth::redirect::safe_next(&base, Some(raw));
    assert!(out.starts_with('/') && !out.starts_with("//"), "{out:?}");
    assert!(!out.chars().any(|c| c.is_control() || c == '\\'), "{out:?}");
    assert!(actix_web::http::header::HeaderValue::from_str(&out).is_ok(), "{out:?}");
    assert_eq!(base.join(&out).unwrap().origin(), base.origin(), "{out:?}");
});
