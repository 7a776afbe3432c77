//! Werkzeug password hashes from the legacy Flask app, verified until the
//! first successful sign-in replaces them with argon2id.

use sha2::Sha256;

/// Upper bounds on legacy parameters: a stored hash must not be able to make
/// one sign-in cost minutes of CPU or gigabytes of memory.
const MAX_PBKDF2_ROUNDS: u32 = 5_000_000;
const MAX_SCRYPT_LOG_N: u8 = 20;
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 16;

/// A parsed Werkzeug hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyHash<'a> {
    Pbkdf2 { rounds: u32, salt: &'a str, hex: &'a str },
    Scrypt { log_n: u8, r: u32, p: u32, salt: &'a str, hex: &'a str },
}

/// Is this a stored legacy hash (as opposed to a PHC argon2 string)?
pub fn is_legacy(stored: &str) -> bool {
    stored.starts_with("pbkdf2:") || stored.starts_with("scrypt:")
}

/// Parses `pbkdf2:sha256:ROUNDS$SALT$HEX` or `scrypt:N:R:P$SALT$HEX`;
/// `None` for anything else, or parameters outside the bounds.
pub fn parse(stored: &str) -> Option<LegacyHash<'_>> {
    let mut parts = stored.splitn(3, '$');
    let (method, salt, hex) = (parts.next()?, parts.next()?, parts.next()?);
    if salt.is_empty() || hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let fields: Vec<&str> = method.split(':').collect();
    match fields.as_slice() {
        ["pbkdf2", "sha256", rounds] => {
            let rounds: u32 = rounds.parse().ok()?;
            (hex.len() == 64 && (1..=MAX_PBKDF2_ROUNDS).contains(&rounds)).then_some(LegacyHash::Pbkdf2 {
                rounds,
                salt,
                hex,
            })
        }
        ["scrypt", n, r, p] => {
            let (n, r, p): (u64, u32, u32) = (n.parse().ok()?, r.parse().ok()?, p.parse().ok()?);
            if !n.is_power_of_two() || n < 2 || hex.len() != 128 {
                return None;
            }
            let log_n = n.trailing_zeros() as u8;
            (log_n <= MAX_SCRYPT_LOG_N && (1..=MAX_SCRYPT_R).contains(&r) && (1..=MAX_SCRYPT_P).contains(&p))
                .then_some(LegacyHash::Scrypt { log_n, r, p, salt, hex })
        }
        _ => None,
    }
}

/// Checks `password` against a legacy hash, in constant time for the
/// comparison. An unparseable hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    let Some(parsed) = parse(stored) else { return false };
    let (expected, derived) = match parsed {
        LegacyHash::Pbkdf2 { rounds, salt, hex } => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), rounds, &mut out);
            (hex, out.to_vec())
        }
        LegacyHash::Scrypt { log_n, r, p, salt, hex } => {
            let Ok(params) = scrypt::Params::new(log_n, r, p, 64) else { return false };
            let mut out = [0u8; 64];
            if scrypt::scrypt(password.as_bytes(), salt.as_bytes(), &params, &mut out).is_err() {
                return false;
            }
            (hex, out.to_vec())
        }
    };
    let Ok(expected) = hex::decode(expected.to_ascii_lowercase()) else { return false };
    // Lengths are fixed by the format (32 or 64 bytes), so only the bytes
    // need the constant-time comparison.
    subtle::ConstantTimeEq::ct_eq(expected.as_slice(), derived.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_hashes_verify_only_the_right_password() {
        // Build a real hash here rather than trusting a pasted constant.
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"pw-alice", b"NaCl", 1000, &mut out);
        let stored = format!("pbkdf2:sha256:1000$NaCl${}", hex::encode(out));
        assert!(verify(&stored, "pw-alice"));
        assert!(!verify(&stored, "pw-alicE"));
    }

    #[test]
    fn scrypt_hashes_verify_only_the_right_password() {
        let params = scrypt::Params::new(10, 8, 1, 64).unwrap();
        let mut out = [0u8; 64];
        scrypt::scrypt(b"pw-bob", b"salty", &params, &mut out).unwrap();
        let stored = format!("scrypt:1024:8:1$salty${}", hex::encode(out));
        assert!(verify(&stored, "pw-bob"));
        assert!(!verify(&stored, "pw-bo"));
    }

    #[test]
    fn unknown_formats_and_absurd_parameters_are_refused() {
        for bad in [
            "sha256$abc$def",
            "garbage",
            "pbkdf2:sha1:1000$s$abcd",
            "pbkdf2:sha256:999999999$s$".to_owned().as_str(),
            "scrypt:1000:8:1$s$ab",
            "scrypt:4194304:8:1$s$00",
            "",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
            assert!(!verify(bad, "x"));
        }
        assert!(is_legacy("pbkdf2:sha256:1$a$b") && !is_legacy("$argon2id$v=19$..."));
    }
}
