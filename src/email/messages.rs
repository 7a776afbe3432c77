//! One function per message, each rendered from a text and an HTML template.

use askama::Template;

use super::outbox::{self, OutgoingEmail};

/// Declares a message: its data struct, its two templates and its subject.
macro_rules! message {
    ($(#[$doc:meta])* $name:ident, $text:ident, $html:ident, $txt_path:literal, $html_path:literal, { $($field:ident : $ty:ty),* $(,)? }, $subject:expr) => {
        $(#[$doc])*
        pub struct $name { $(pub $field: $ty),* }

        #[derive(Template)]
        #[template(path = $txt_path)]
        struct $text<'a> { m: &'a $name }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> { m: &'a $name }

        impl $name {
            /// Renders the message for `to`.
            pub fn render(&self, to: &str) -> Result<OutgoingEmail, askama::Error> {
                Ok(OutgoingEmail {
                    to: to.to_owned(),
                    subject: ($subject)(self),
                    text: Some($text { m: self }.render()?),
                    html: Some($html { m: self }.render()?),
                })
            }

            /// Renders the message for `to` and queues it in the caller's
            /// transaction.
            pub fn queue(&self, conn: &mut diesel::PgConnection, to: &str) -> Result<(), crate::error::AppError> {
                let email = self.render(to).map_err(|e| crate::error::AppError::Internal(e.into()))?;
                outbox::enqueue(conn, &email)?;
                Ok(())
            }
        }
    };
}

message!(
    /// Confirms an address with a single-use link.
    VerifyEmail, VerifyEmailText, VerifyEmailHtml, "email/verify_email.txt", "email/verify_email.html",
    { username: String, link: String },
    |_: &VerifyEmail| "Confirm your email address for Questline".to_owned()
);

message!(
    /// Tells the old address that a change to a new one was requested.
    EmailChangeNotice, EmailChangeNoticeText, EmailChangeNoticeHtml, "email/email_change_notice.txt", "email/email_change_notice.html",
    { username: String, new_email: String },
    |_: &EmailChangeNotice| "Your Questline email address is being changed".to_owned()
);

message!(
    /// A single-use link to choose a new password.
    ResetPassword, ResetPasswordText, ResetPasswordHtml, "email/reset_password.txt", "email/reset_password.html",
    { username: String, link: String },
    |_: &ResetPassword| "Reset your Questline password".to_owned()
);

message!(
    /// Sent after a password reset or change.
    PasswordChanged, PasswordChangedText, PasswordChangedHtml, "email/password_changed.txt", "email/password_changed.html",
    { username: String },
    |_: &PasswordChanged| "Your Questline password was changed".to_owned()
);

message!(
    /// Sent when repeated failures lock the account.
    AccountLocked, AccountLockedText, AccountLockedHtml, "email/account_locked.txt", "email/account_locked.html",
    { username: String, minutes: i64, ip: String },
    |_: &AccountLocked| "Your Questline account was locked after failed sign-ins".to_owned()
);

message!(
    /// Sent on a sign-in from a browser not seen before.
    NewDeviceLogin, NewDeviceLoginText, NewDeviceLoginHtml, "email/new_device.txt", "email/new_device.html",
    { username: String, device: String, ip: String, when: String },
    |_: &NewDeviceLogin| "New sign-in to your Questline account".to_owned()
);

message!(
    /// Tells an address's owner that another account tried to take it (a
    /// registration or an email change), instead of telling the one who
    /// tried, who could otherwise probe which addresses have accounts.
    AddressInUse, AddressInUseText, AddressInUseHtml, "email/address_in_use.txt", "email/address_in_use.html",
    { username: String, attempt: String },
    |_: &AddressInUse| "Someone tried to use your email address on Questline".to_owned()
);

message!(
    /// Tells a SteamID's holder that another account proved it: refused
    /// when they had proven it themselves, released to the prover when
    /// they had not.
    SteamIdClaimed, SteamIdClaimedText, SteamIdClaimedHtml, "email/steam_id_claimed.txt", "email/steam_id_claimed.html",
    { username: String, steam_id: String, released: bool, steam_page: String },
    |m: &SteamIdClaimed| if m.released {
        "Your Steam account was unlinked from Questline".to_owned()
    } else {
        "Someone tried to link your Steam account on Questline".to_owned()
    }
);

message!(
    /// Confirms that the owner deleted their account.
    AccountDeleted, AccountDeletedText, AccountDeletedHtml, "email/account_deleted.txt", "email/account_deleted.html",
    { username: String, shared_kept: i64 },
    |_: &AccountDeleted| "Your Questline account is deleted".to_owned()
);

message!(
    /// The weekly digest a user asked for: unlocks, goals met, games
    /// perfected, with a link that turns it off.
    WeeklyDigest, WeeklyDigestText, WeeklyDigestHtml, "email/weekly_digest.txt", "email/weekly_digest.html",
    { username: String, unlocked: i64, highlights: Vec<String>, goals: Vec<String>, perfected: Vec<String>, stats_link: String, unsubscribe_link: String },
    |m: &WeeklyDigest| format!("Your week on Questline: {} unlock(s)", m.unlocked)
);
