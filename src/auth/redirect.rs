//! Where to go after signing in: only ever a path on this site.

/// Where a sign-in (or a re-authentication) goes when `next` is missing or
/// refused.
pub const DEFAULT_NEXT: &str = "/dashboard";

/// The page to return to after signing in, if `next` names one on this site.
///
/// Decided the way a browser would read the `Location` header: the value is
/// resolved against `base` (PUBLIC_BASE_URL) with a real URL parser and
/// followed only when the origin is unchanged. Control characters and
/// backslashes are refused outright, because browsers drop or rewrite them
/// (`/\t/evil.example` becomes `//evil.example`). What comes back is the
/// parser's own serialisation, so it is always a valid header value.
pub fn safe_next(base: &url::Url, next: Option<&str>) -> String {
    let Some(raw) = next else { return DEFAULT_NEXT.to_owned() };
    if !raw.starts_with('/') || raw.chars().any(|c| c.is_control() || c == '\\') {
        return DEFAULT_NEXT.to_owned();
    }
    match base.join(raw) {
        // A path that normalises to `//…` (`/.//evil.example`) would be read
        // as another host once it is a `Location` again.
        Ok(url) if url.origin() == base.origin() && !url.cannot_be_a_base() && !url.path().starts_with("//") => {
            let mut local = url.path().to_owned();
            if let Some(query) = url.query() {
                local.push('?');
                local.push_str(query);
            }
            local
        }
        _ => DEFAULT_NEXT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{safe_next, DEFAULT_NEXT};

    fn next(raw: &str) -> String {
        safe_next(&url::Url::parse("https://questline.example/").unwrap(), Some(raw))
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(next("/account/sessions"), "/account/sessions");
        assert_eq!(next("/library?sort=playtime&page=2"), "/library?sort=playtime&page=2");
        assert_eq!(next("//evil.example"), DEFAULT_NEXT);
        assert_eq!(next("https://evil.example"), DEFAULT_NEXT);
        assert_eq!(next("/\\evil.example"), DEFAULT_NEXT);
        assert_eq!(safe_next(&url::Url::parse("http://a.example/").unwrap(), None), DEFAULT_NEXT);
    }

    #[test]
    fn control_characters_and_browser_tricks_are_refused() {
        for raw in
            ["/\t/evil.example", "/\n/evil.example", "/\r\nSet-Cookie: a=b", "/a\u{0}b", "/\u{7f}x", "\\evil", " /x"]
        {
            assert_eq!(next(raw), DEFAULT_NEXT, "{raw:?}");
        }
    }

    #[test]
    fn paths_that_normalise_to_another_host_are_refused() {
        // Found by the `next` fuzz target: the dot segment goes, and `//`
        // is left at the front.
        for raw in ["/.//", "/.//evil.example", "/a/..//evil.example", "/%2e//evil.example"] {
            assert_eq!(next(raw), DEFAULT_NEXT, "{raw:?}");
        }
    }

    #[test]
    fn what_comes_back_is_always_a_valid_header_value() {
        let out = next("/library?q=\u{e9}t\u{e9} \"x\"");
        assert!(out.starts_with("/library?q="), "{out}");
        assert!(actix_web::http::header::HeaderValue::from_str(&out).is_ok(), "{out}");
    }
}
