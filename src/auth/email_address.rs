//! Email addresses as every form and the legacy import take them.

use serde::Deserialize;
use validator::ValidateEmail;

/// A form with one email field (password reset, resend, email change).
#[derive(Deserialize)]
pub struct EmailForm {
    pub email: String,
}

/// A trimmed, composed (NFC), lower-cased address, or why it is refused.
/// An internationalised local part (`josé@…`, RFC 6531) is an address when
/// the mailer can send to it.
pub fn normalise_email(raw: &str) -> Result<String, String> {
    let email = crate::names::email_form(raw);
    let valid = email.validate_email() || email.parse::<lettre::Address>().is_ok_and(|a| !a.domain().is_empty());
    if email.len() > 254 || !valid || email.chars().any(char::is_control) {
        return Err("Enter a valid email address.".into());
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::normalise_email;

    #[test]
    fn an_address_is_kept_composed_and_lower_case_whatever_its_form() {
        assert_eq!(normalise_email(" Jos\u{e9}@Example.COM ").unwrap(), "jos\u{e9}@example.com");
        assert_eq!(normalise_email("Jose\u{301}@example.com").unwrap(), "jos\u{e9}@example.com");
        assert_eq!(normalise_email("alice@example.com").unwrap(), "alice@example.com");
    }

    #[test]
    fn what_is_not_an_address_is_refused() {
        for bad in ["", "alice", "alice@", "@example.com", "a b@example.com", "a@b@example.com", "a\u{0}@example.com"] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
    }
}
