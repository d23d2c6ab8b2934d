//! Windows accounts as SIDs, for the ACL of a stored secret and the principal of a scheduled
//! task, without asking Windows where the answer is fixed: the well-known accounts, and a service's virtual account
//! (`NT SERVICE\reqsync`), whose SID is derived from the service's name. The latter matters
//! because an administrator usually stores the secret *before* `reqsync service install`
//! creates the account, when Windows cannot look its name up yet.
//!
//! Pure computation, so it is tested on every platform.

/// The SID (`S-1-…`) of `account` when it is a SID already, a well-known account or a service's
/// virtual account; `None` when Windows must be asked (`LookupAccountNameW`). A SID given as
/// text is checked to be only digits and dashes: it is pasted into an SDDL string, where `)`
/// or `;` would add access rules of their own.
pub fn known_sid(account: &str) -> Option<Result<String, String>> {
    let trimmed = account.trim();
    if trimmed.len() >= 4 && trimmed[..4].eq_ignore_ascii_case("S-1-") {
        let valid = trimmed[4..].split('-').all(|part| {
            !part.is_empty() && part.len() <= 10 && part.bytes().all(|b| b.is_ascii_digit())
        });
        return Some(if valid {
            Ok(trimmed.to_ascii_uppercase())
        } else {
            Err("not a SID (S-1-5-…: digits and dashes only)".into())
        });
    }
    let upper = trimmed.to_ascii_uppercase();
    if let Some(service) = upper.strip_prefix(r"NT SERVICE\") {
        return Some(Ok(service_sid(service)));
    }
    let builtin = match service_account_sid(trimmed) {
        Some(sid) => sid,
        None => match upper.as_str() {
            r"BUILTIN\ADMINISTRATORS" | "ADMINISTRATORS" => "S-1-5-32-544",
            _ => return None,
        },
    };
    Some(Ok(builtin.to_string()))
}

/// The SID of one of the accounts Windows signs in itself, with no password — SYSTEM,
/// LOCAL SERVICE, NETWORK SERVICE (with or without `NT AUTHORITY\`) — or `None`. The SID,
/// unlike the name, is the same in every language of Windows.
pub fn service_account_sid(account: &str) -> Option<&'static str> {
    let upper = account.trim().to_ascii_uppercase();
    let name = upper.strip_prefix(r"NT AUTHORITY\").unwrap_or(&upper);
    match name {
        "SYSTEM" | "LOCALSYSTEM" => Some("S-1-5-18"),
        "LOCAL SERVICE" | "LOCALSERVICE" => Some("S-1-5-19"),
        "NETWORK SERVICE" | "NETWORKSERVICE" => Some("S-1-5-20"),
        _ => None,
    }
}

/// The SID of `NT SERVICE\<service>`: `S-1-5-80-` and the SHA-1 of the upper-cased service
/// name in UTF-16LE, as five little-endian 32-bit numbers (what `sc showsid` prints; it exists
/// whether or not the service is installed).
pub fn service_sid(service: &str) -> String {
    let utf16: Vec<u8> = service
        .to_uppercase()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &utf16);
    let parts: Vec<String> = hash
        .as_ref()
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    format!("S-1-5-80-{}", parts.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_sid_is_the_one_windows_derives_from_the_name() {
        // `sc showsid TrustedInstaller`, as documented by Microsoft.
        assert_eq!(
            service_sid("TrustedInstaller"),
            "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
        );
        assert_eq!(
            known_sid(r"NT SERVICE\reqsync"),
            Some(Ok(service_sid("REQSYNC")))
        );
    }

    #[test]
    fn well_known_accounts_and_sids_need_no_lookup() {
        for (account, sid) in [
            ("NETWORK SERVICE", "S-1-5-20"),
            (r"nt authority\network service", "S-1-5-20"),
            ("LocalSystem", "S-1-5-18"),
            (r"BUILTIN\Administrators", "S-1-5-32-544"),
            (
                "S-1-5-21-1004336348-1177238915-682003330-512",
                "S-1-5-21-1004336348-1177238915-682003330-512",
            ),
        ] {
            assert_eq!(known_sid(account), Some(Ok(sid.to_string())), "{account}");
        }
        assert_eq!(known_sid(r"CLINIC\svc-reqsync"), None);
    }

    #[test]
    fn a_sid_that_would_add_an_access_rule_is_refused() {
        for bad in ["S-1-1-0)(A;;FA;;;WD", "S-1-", "S-1-5-x", "s-1-5--18"] {
            assert!(matches!(known_sid(bad), Some(Err(_))), "{bad}");
        }
    }
}
