//! The two things a user or an operator types that name Steam: a SteamID64
//! and a Web API key. A leaf module (nothing of the crate below it), so the
//! settings, the client, the OpenID check and the import share one rule.

/// A SteamID64 of an individual account in the public universe.
pub fn valid_steam_id(raw: &str) -> Result<u64, String> {
    let value: u64 = raw.parse().map_err(|_| "A SteamID64 is 17 digits.".to_owned())?;
    let id = steamid_ng::SteamID::from_steam64(value).map_err(|_| "That is not a valid SteamID64.".to_owned())?;
    if id.account_type() != steamid_ng::AccountType::Individual || id.universe() != steamid_ng::Universe::Public {
        return Err("That SteamID64 is not a personal Steam account.".into());
    }
    Ok(value)
}

/// A Web API key is 32 hexadecimal characters.
pub fn valid_api_key(raw: &str) -> Result<String, String> {
    let key = raw.trim();
    if key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(key.to_uppercase())
    } else {
        Err("A Steam Web API key is 32 letters and digits (0-9, A-F).".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_32_hex_characters() {
        assert_eq!(valid_api_key(" 0123456789abcdef0123456789ABCDEF ").unwrap(), "0123456789ABCDEF0123456789ABCDEF");
        assert!(valid_api_key("0123").is_err());
        assert!(valid_api_key("0123456789abcdef0123456789ABCDEZ").is_err());
    }

    #[test]
    fn only_individual_public_steam_ids_are_accepted() {
        assert_eq!(valid_steam_id("76561197960287930"), Ok(76561197960287930));
        assert!(valid_steam_id("12345678901234567").is_err(), "not an individual account");
        assert!(valid_steam_id("103582791429521412").is_err(), "a group");
        assert!(valid_steam_id("not a number").is_err());
    }
}
