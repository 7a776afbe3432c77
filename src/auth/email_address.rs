//! Email addresses as every form and the legacy import take them.

use serde::Deserialize;
use validator::ValidateEmail;

/// A form with one email field (password reset, resend, email change).
#[derive(Deserialize)]
pub struct EmailForm {
    pub email: String,
}

/// A trimmed, lower-cased address, or why it is refused.
pub fn normalise_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || !email.validate_email() {
        return Err("Enter a valid email address.".into());
    }
    Ok(email)
}
