//! Sign in through Steam: the relying-party half of OpenID 2.0 against
//! Steam's provider, written here because neither published crate checks
//! what must be checked (see the README, "Sign in through Steam").
//!
//! A SteamID is believed only from a positive assertion that passes every
//! check of [`check_fields`] *and* that the provider itself confirms with a
//! direct `check_authentication` call ([`Provider::confirm`]); the caller
//! then spends the nonce once ([`NonceLedger`]) and holds the browser to the
//! session that started the sign-in.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

/// The OpenID 2.0 namespace every message carries.
pub const NS: &str = "http://specs.openid.net/auth/2.0";
const IDENTIFIER_SELECT: &str = "http://specs.openid.net/auth/2.0/identifier_select";
/// Steam's claimed identifiers: this prefix and a SteamID64. The provider
/// may live elsewhere (the fake in tests) but identities are always these.
pub const CLAIMED_ID_PREFIX: &str = "https://steamcommunity.com/openid/id/";
/// Fields the provider's signature must cover: everything this module reads.
const MUST_BE_SIGNED: [&str; 6] =
    ["op_endpoint", "claimed_id", "identity", "return_to", "response_nonce", "assoc_handle"];
/// How old a nonce may be, and how far ahead of our clock.
pub const NONCE_MAX_AGE_SECS: i64 = 300;
const NONCE_MAX_SKEW_SECS: i64 = 60;

/// Why a sign-in through Steam was not believed; each says what the user
/// can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("You cancelled signing in through Steam.")]
    Cancelled,
    #[error("Steam did not confirm the sign-in. Please try again.")]
    NotPositive,
    #[error("That answer did not come from Steam's sign-in page.")]
    WrongEndpoint,
    #[error("That answer was not meant for this sign-in. Please start again from this site.")]
    WrongReturnTo,
    #[error("Steam's answer did not name a Steam account.")]
    BadIdentity,
    #[error("Steam's answer was not signed as a whole. Please try again.")]
    UnsignedFields,
    #[error("That sign-in is too old. Please sign in through Steam again.")]
    StaleNonce,
    #[error("That sign-in was already used. Please sign in through Steam again.")]
    Replayed,
    #[error("Steam did not vouch for that answer.")]
    NotVouched,
    #[error("Steam could not be reached to confirm the sign-in. Please try again in a moment.")]
    Unreachable,
    #[error("This sign-in was started in another browser, or it expired. Please start again here.")]
    NotThisBrowser,
}

/// A positive assertion whose fields passed [`check_fields`]: not yet
/// confirmed by the provider, nor its nonce spent.
#[derive(Debug, Clone)]
pub struct Assertion {
    pub steam_id: u64,
    /// The nonce as sent, for [`NonceLedger`].
    pub nonce: String,
    /// Every `openid.*` field as received, for `check_authentication`.
    fields: BTreeMap<String, String>,
}

/// The `openid.*` fields of a query string; `None` when one is given twice
/// (which copy the provider signed would be anyone's guess).
pub fn openid_fields(query: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if !k.starts_with("openid.") {
            continue;
        }
        // The signature covers `name:value` lines: a newline in a value or
        // a colon in a name would let one signed message be cut into
        // another (OpenID's key-value form forbids both).
        if v.contains('\n') || k.contains('\n') || k.contains(':') {
            return None;
        }
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return None;
        }
    }
    Some(out)
}

/// Where to send the browser: the provider's page, asking it to come back
/// to `return_to` (which must lie under `realm`).
pub fn authorize_url(endpoint: &Url, return_to: &Url, realm: &Url) -> Url {
    debug_assert!(return_to.as_str().starts_with(realm.as_str()));
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("openid.ns", NS)
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.return_to", return_to.as_str())
        .append_pair("openid.realm", realm.as_str())
        .append_pair("openid.identity", IDENTIFIER_SELECT)
        .append_pair("openid.claimed_id", IDENTIFIER_SELECT);
    url
}

/// The SteamID64 of a claimed identifier in Steam's exact form.
pub fn steam_id_of(claimed_id: &str) -> Option<u64> {
    let digits = claimed_id.strip_prefix(CLAIMED_ID_PREFIX)?;
    if digits.len() != 17 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Individual accounts in the public universe only.
    crate::steam_ids::valid_steam_id(digits).ok()
}

/// When a nonce says it was made: its leading `YYYY-MM-DDTHH:MM:SSZ`.
fn nonce_time(nonce: &str) -> Option<DateTime<Utc>> {
    let stamp = nonce.get(..20)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%SZ").ok().map(|t| t.and_utc())
}

/// Every check of a positive assertion that needs no network: mode,
/// namespace, the provider named, the exact return address, the identity,
/// the signed list and the nonce's age.
pub fn check_fields(
    fields: BTreeMap<String, String>,
    endpoint: &Url,
    return_to: &str,
    now: DateTime<Utc>,
) -> Result<Assertion, Refusal> {
    let get = |k: &str| fields.get(&format!("openid.{k}")).map(String::as_str);
    match get("mode") {
        Some("id_res") => {}
        Some("cancel") => return Err(Refusal::Cancelled),
        _ => return Err(Refusal::NotPositive),
    }
    if get("ns") != Some(NS) {
        return Err(Refusal::NotPositive);
    }
    if get("op_endpoint") != Some(endpoint.as_str()) {
        return Err(Refusal::WrongEndpoint);
    }
    if get("return_to") != Some(return_to) {
        return Err(Refusal::WrongReturnTo);
    }
    let claimed = get("claimed_id").ok_or(Refusal::BadIdentity)?;
    if get("identity") != Some(claimed) {
        return Err(Refusal::BadIdentity);
    }
    let steam_id = steam_id_of(claimed).ok_or(Refusal::BadIdentity)?;
    let signed: Vec<&str> = get("signed").unwrap_or_default().split(',').collect();
    if get("sig").is_none_or(str::is_empty) || MUST_BE_SIGNED.iter().any(|f| !signed.contains(f)) {
        return Err(Refusal::UnsignedFields);
    }
    // Only plain field names: anything else in the list is an attempt to
    // shape the signed text.
    let plain = |f: &&str| {
        !f.is_empty() && f.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    };
    if !signed.iter().all(plain) {
        return Err(Refusal::UnsignedFields);
    }
    // Every field named as signed must be there to be signed.
    if signed.iter().any(|f| get(f).is_none()) {
        return Err(Refusal::UnsignedFields);
    }
    let nonce = get("response_nonce").unwrap_or_default().to_owned();
    let made = nonce_time(&nonce).ok_or(Refusal::StaleNonce)?;
    let age = (now - made).num_seconds();
    if !(-NONCE_MAX_SKEW_SECS..=NONCE_MAX_AGE_SECS).contains(&age) {
        return Err(Refusal::StaleNonce);
    }
    Ok(Assertion { steam_id, nonce, fields })
}

/// Whether a `check_authentication` answer (key-value form) vouches: one
/// `is_valid` line, and it says `true`.
pub fn vouches(body: &str) -> bool {
    let mut answers = body.lines().filter_map(|l| l.strip_prefix("is_valid:"));
    matches!((answers.next(), answers.next()), (Some("true"), None))
}

/// Steam's OpenID provider (or the fake one), reached directly.
#[derive(Clone)]
pub struct Provider {
    pub endpoint: Url,
    http: reqwest::Client,
}

impl Provider {
    pub fn new(endpoint: Url) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // check_authentication is a POST, which nothing retries: a
            // pooled connection the provider is closing just then (web
            // servers drop idle ones after about 5 s) would fail a sign-in.
            // Idle connections are dropped on this side first.
            .pool_idle_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Questline/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a plain reqwest client builds");
        Provider { endpoint, http }
    }

    /// Asks the provider whether it made this assertion: every field as
    /// received, the mode changed to `check_authentication`, posted to the
    /// configured endpoint (never to one the assertion names).
    pub async fn confirm(&self, assertion: &Assertion) -> Result<(), Refusal> {
        let mut form = assertion.fields.clone();
        form.insert("openid.mode".into(), "check_authentication".into());
        let res = self.http.post(self.endpoint.clone()).form(&form).send().await.map_err(|e| {
            let cause = std::error::Error::source(&e).map(|c| c.to_string()).unwrap_or_default();
            tracing::warn!(error = %e, cause, "Steam's OpenID provider could not be reached");
            Refusal::Unreachable
        })?;
        if !res.status().is_success() {
            tracing::warn!(status = res.status().as_u16(), "Steam's OpenID provider refused check_authentication");
            return Err(Refusal::Unreachable);
        }
        let body = res.text().await.map_err(|_| Refusal::Unreachable)?;
        if vouches(&body) {
            Ok(())
        } else {
            Err(Refusal::NotVouched)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "https://steamcommunity.com/openid/login";
    const BACK: &str = "https://questline.example/auth/steam/return?state=abc";

    fn good(now: DateTime<Utc>) -> BTreeMap<String, String> {
        let nonce = format!("{}Xy12", now.format("%Y-%m-%dT%H:%M:%SZ"));
        let id = format!("{CLAIMED_ID_PREFIX}76561197960287930");
        [
            ("ns", NS),
            ("mode", "id_res"),
            ("op_endpoint", ENDPOINT),
            ("claimed_id", &id),
            ("identity", &id),
            ("return_to", BACK),
            ("response_nonce", &nonce),
            ("assoc_handle", "1234567890"),
            ("signed", "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle"),
            ("sig", "c2lnbmF0dXJl"),
        ]
        .into_iter()
        .map(|(k, v)| (format!("openid.{k}"), v.to_owned()))
        .collect()
    }

    fn check(f: BTreeMap<String, String>, now: DateTime<Utc>) -> Result<u64, Refusal> {
        check_fields(f, &Url::parse(ENDPOINT).unwrap(), BACK, now).map(|a| a.steam_id)
    }

    fn with(now: DateTime<Utc>, k: &str, v: &str) -> BTreeMap<String, String> {
        let mut f = good(now);
        f.insert(format!("openid.{k}"), v.into());
        f
    }

    #[test]
    fn a_well_formed_assertion_names_its_steam_id() {
        let now = Utc::now();
        assert_eq!(check(good(now), now), Ok(76561197960287930));
    }

    #[test]
    fn every_field_that_is_wrong_is_refused_for_its_own_reason() {
        let now = Utc::now();
        assert_eq!(check(with(now, "mode", "cancel"), now), Err(Refusal::Cancelled));
        assert_eq!(check(with(now, "mode", "setup_needed"), now), Err(Refusal::NotPositive));
        assert_eq!(check(with(now, "ns", "http://openid.net/signon/1.1"), now), Err(Refusal::NotPositive));
        assert_eq!(
            check(with(now, "op_endpoint", "https://evil.example/openid/login"), now),
            Err(Refusal::WrongEndpoint)
        );
        assert_eq!(check(with(now, "return_to", "https://evil.example/"), now), Err(Refusal::WrongReturnTo));
        assert_eq!(check(with(now, "return_to", &format!("{BACK}&x=1")), now), Err(Refusal::WrongReturnTo));
        let other = format!("{CLAIMED_ID_PREFIX}76561197960287931");
        assert_eq!(check(with(now, "identity", &other), now), Err(Refusal::BadIdentity));
        let mut f = with(now, "claimed_id", "https://evil.example/openid/id/76561197960287930");
        f.insert("openid.identity".into(), "https://evil.example/openid/id/76561197960287930".into());
        assert_eq!(check(f, now), Err(Refusal::BadIdentity));
        let signed = "signed,op_endpoint,identity,return_to,response_nonce,assoc_handle";
        assert_eq!(check(with(now, "signed", signed), now), Err(Refusal::UnsignedFields));
        let mut f = good(now);
        f.remove("openid.sig");
        assert_eq!(check(f, now), Err(Refusal::UnsignedFields));
        let mut f =
            with(now, "signed", "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle,extra");
        assert_eq!(check(f.clone(), now), Err(Refusal::UnsignedFields));
        f.insert("openid.extra".into(), "x".into());
        assert!(check(f, now).is_ok());
    }

    #[test]
    fn nonces_must_be_recent_and_well_formed() {
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(NONCE_MAX_AGE_SECS + 5);
        assert_eq!(check(good(old), now), Err(Refusal::StaleNonce));
        let ahead = now + chrono::Duration::seconds(NONCE_MAX_SKEW_SECS + 5);
        assert_eq!(check(good(ahead), now), Err(Refusal::StaleNonce));
        assert_eq!(check(with(now, "response_nonce", "not a time"), now), Err(Refusal::StaleNonce));
    }

    #[test]
    fn only_individual_steam_ids_in_steams_exact_form_are_identities() {
        assert_eq!(steam_id_of("https://steamcommunity.com/openid/id/76561197960287930"), Some(76561197960287930));
        assert_eq!(steam_id_of("http://steamcommunity.com/openid/id/76561197960287930"), None);
        assert_eq!(steam_id_of("https://steamcommunity.com/openid/id/76561197960287930/"), None);
        assert_eq!(steam_id_of("https://steamcommunity.com/openid/id/7656119796028793"), None);
        assert_eq!(steam_id_of("https://steamcommunity.com/openid/id/+6561197960287930"), None);
        // A clan's id has the right length but is not a person.
        assert_eq!(steam_id_of("https://steamcommunity.com/openid/id/10358279170000000"), None);
    }

    #[test]
    fn only_a_single_true_is_valid_line_vouches() {
        assert!(vouches("ns:http://specs.openid.net/auth/2.0\nis_valid:true\n"));
        assert!(!vouches("ns:http://specs.openid.net/auth/2.0\nis_valid:false\n"));
        assert!(!vouches("is_valid:false\nis_valid:true\n"));
        assert!(!vouches("is_valid: true\n"));
        assert!(!vouches("<html>is_valid:true</html>"));
        assert!(!vouches(""));
    }

    #[test]
    fn fields_given_twice_or_able_to_reshape_the_signed_text_are_refused() {
        assert!(openid_fields("openid.mode=id_res&openid.mode=cancel").is_none());
        assert!(openid_fields("openid.return_to=http%3A%2F%2Fa%2F%0Aclaimed_id%3Ax").is_none(), "a newline in a value");
        assert!(openid_fields("openid.a%3Ab=1").is_none(), "a colon in a name");
        assert!(openid_fields("openid.a%0Ab=1").is_none(), "a newline in a name");
        let now = Utc::now();
        let spliced = "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle,x y";
        assert_eq!(check(with(now, "signed", spliced), now), Err(Refusal::UnsignedFields));
        let f = openid_fields("state=x&openid.mode=id_res&other=1").unwrap();
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn the_authorize_url_asks_steam_to_pick_the_identity_and_come_back() {
        let u = authorize_url(
            &Url::parse(ENDPOINT).unwrap(),
            &Url::parse(BACK).unwrap(),
            &Url::parse("https://questline.example/").unwrap(),
        );
        let q: BTreeMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["openid.mode"], "checkid_setup");
        assert_eq!(q["openid.return_to"], BACK);
        assert_eq!(q["openid.realm"], "https://questline.example/");
        assert_eq!(q["openid.claimed_id"], IDENTIFIER_SELECT);
    }
}
