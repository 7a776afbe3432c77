//! One rule for comparing usernames and one form for storing names and
//! addresses, the same on every path (sign-in, registration, Steam sign-up,
//! the admin command, the legacy import) and independent of the database's
//! locale.
//!
//! A name is stored as typed but in Unicode NFC, so `Zoë` typed with a
//! combining diaeresis and with the precomposed letter is one name. Two
//! names are the same name when their [`key`]s are equal: Unicode's
//! compatibility caseless match (NFKC with full case folding, as in
//! Unicode 16 §3.13 D146), so `ΣΑΣ`, `σας` and `σασ` are one name, `ß` and
//! `SS` are, and so are a full-width `Ａ` and `a`. PostgreSQL's `lower()`
//! depends on the database's locale (and folds a final `Σ` differently from
//! Rust's `to_lowercase`); the key does not.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

/// The stored form of a name or text typed by a person: NFC.
pub fn display_form(name: &str) -> String {
    name.nfc().collect()
}

/// The comparison key of a username: equal keys mean the same account
/// name. NFD, case fold, NFKD, case fold, NFKD (the compatibility caseless
/// form) without invisible characters, kept in NFC so the column stays
/// compact and readable.
pub fn key(name: &str) -> String {
    name.trim().nfd().default_case_fold().nfkd().default_case_fold().nfkd().filter(|c| !invisible(*c)).nfc().collect()
}

/// Unicode's Default_Ignorable_Code_Point characters (soft hyphen,
/// zero-width spaces and joiners, direction marks, variation selectors,
/// tags): invisible, so `al\u{AD}ice` is `alice`, as NFKC_Casefold has it.
fn invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x034F | 0x061C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// The stored form of an email address: trimmed, NFC, lower-case (a
/// decomposed `josé@example.com` is the same address as the composed one).
pub fn email_form(raw: &str) -> String {
    raw.trim().nfc().collect::<String>().to_lowercase().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_final_sigma_folds_like_any_other() {
        assert_eq!(key("ΣΑΣ"), key("σας"));
        assert_eq!(key("ΣΑΣ"), key("σασ"));
        assert_eq!(key("ΟΔΥΣΣΕΑΣ"), key("οδυσσεας"));
    }

    #[test]
    fn dotted_capital_i_and_sharp_s_fold_fully() {
        assert_eq!(key("STRASSE"), key("straße"));
        assert_eq!(key("İ"), key("i\u{307}"));
        assert_ne!(key("İ"), key("i"));
    }

    #[test]
    fn composed_and_decomposed_forms_are_one_name() {
        let nfc = "Zo\u{eb}";
        let nfd = "Zoe\u{308}";
        assert_eq!(key(nfc), key(nfd));
        assert_eq!(display_form(nfd), nfc);
    }

    #[test]
    fn invisible_characters_do_not_make_another_name() {
        assert_eq!(key("al\u{AD}ice"), key("alice"));
        assert_eq!(key("alice\u{200B}"), key("alice"));
        assert_eq!(key("a\u{200D}lice\u{FE0F}"), key("ALICE"));
    }

    #[test]
    fn compatibility_forms_are_one_name() {
        assert_eq!(key("\u{FF21}lice"), key("alice"));
        assert_eq!(key("\u{FB01}sh"), key("fish"));
    }

    #[test]
    fn decomposed_addresses_are_stored_composed() {
        assert_eq!(email_form(" Jose\u{301}@Example.COM "), "jos\u{e9}@example.com");
    }

    proptest! {
        #[test]
        fn the_key_is_idempotent_and_ignores_case_and_normal_form(s in "[a-zA-Z0-9_ α-ωΑ-ΩςéëÉËßİ\u{301}\u{308}]{0,12}") {
            let k = key(&s);
            prop_assert_eq!(key(&k), k.clone());
            prop_assert_eq!(key(&s.to_uppercase()), key(&s.to_lowercase()));
            prop_assert_eq!(key(&s.nfd().collect::<String>()), k.clone());
            prop_assert_eq!(key(&display_form(&s)), k);
        }
    }
}
