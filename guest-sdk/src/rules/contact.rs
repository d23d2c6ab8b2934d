//! US postal addresses, phone numbers and e-mail addresses.

use super::CodeList;
use super::text::trim;

/// Every two-letter code the US Postal Service delivers to, sorted: the 50 states, DC, the
/// inhabited territories (AS, GU, MP, PR, VI), the freely associated states served by USPS
/// (FM, MH, PW) and the military "states" AA, AE, AP (APO/FPO addresses are real mailing
/// addresses of real patients). UM (Minor Outlying Islands) is left out: it has no mail service.
pub const US_STATE_CODES: CodeList<&str> = CodeList::new(&[
    "AA", "AE", "AK", "AL", "AP", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "FM", "GA",
    "GU", "HI", "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MH", "MI", "MN", "MO",
    "MP", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR",
    "PW", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VI", "VT", "WA", "WI", "WV", "WY",
]);

/// The upper-cased code when the trimmed `value` is a [`US_STATE_CODES`] entry (`" mo "` →
/// `MO`); `None` otherwise (full names such as `Missouri` included: guessing is not our job).
pub fn normalize_state(value: &str) -> Option<&'static str> {
    let trimmed = trim(value).as_bytes();
    let &[a, b] = trimmed else {
        return None;
    };
    let upper = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
    let code = std::str::from_utf8(&upper).ok()?;
    US_STATE_CODES.get(code).copied()
}

/// The trimmed `value` when it is a 5-digit ZIP code or a ZIP+4 (`12345-6789`); `None`
/// otherwise. Nine digits without the hyphen are refused rather than repaired: they are as
/// often a typo as a ZIP+4.
pub fn normalize_zip(value: &str) -> Option<&str> {
    let trimmed = trim(value);
    let digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    let ok = match trimmed.as_bytes() {
        zip @ [_, _, _, _, _] => digits(zip),
        [zip @ .., b'-', _, _, _, _] if zip.len() == 5 => {
            digits(zip) && digits(&trimmed.as_bytes()[6..])
        }
        _ => false,
    };
    ok.then_some(trimmed)
}

/// A North American phone number formatted `816-555-0100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UsPhone {
    text: [u8; 12],
}

impl UsPhone {
    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII digits and hyphens.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

/// Normalises a phone number to `816-555-0100`.
///
/// Accepts digits with the usual punctuation (spaces, `(`, `)`, `-`, `.`, a leading `+`). There
/// must be 10 digits, or 11 starting with the country code `1` (`+1 816 555 0100`), which is
/// dropped since ReqCheck stores national numbers. Refused (`None`):
/// - any other character — letters included, so `816-555-0100 x12` loses nothing silently;
/// - numbers whose area code or exchange starts with 0 or 1, which the North American
///   Numbering Plan never assigns (this catches `123-456-7890` and digit-shifted entries).
pub fn normalize_phone(value: &str) -> Option<UsPhone> {
    let value = trim(value);
    let value = value.strip_prefix('+').unwrap_or(value);
    let mut digits = [0u8; 11];
    let mut count = 0;
    for b in value.bytes() {
        match b {
            b'0'..=b'9' => {
                *digits.get_mut(count)? = b;
                count += 1;
            }
            b' ' | b'(' | b')' | b'-' | b'.' => {}
            _ => return None,
        }
    }
    let national = match (count, digits[0]) {
        (10, _) => &digits[..10],
        (11, b'1') => &digits[1..11],
        _ => return None,
    };
    if national[0] < b'2' || national[3] < b'2' {
        return None;
    }
    let mut text = [b'-'; 12];
    text[..3].copy_from_slice(&national[..3]);
    text[4..7].copy_from_slice(&national[3..6]);
    text[8..].copy_from_slice(&national[6..]);
    Some(UsPhone { text })
}

/// The trimmed `value` when it looks like a deliverable address: one `@`, a local part without
/// spaces or edge/double dots, and a domain of at least two dot-separated labels (letters,
/// digits, hyphens or non-ASCII, not starting or ending with a hyphen) whose last label has two
/// or more characters and is not all digits. Lengths follow RFC 5321 (64 / 253 / 254).
///
/// Plausible, not valid: the point is to drop what is obviously not an address
/// (`none`, `n/a`, `john@`, `john@gmail`), not to reproduce RFC 5322.
pub fn plausible_email(value: &str) -> Option<&str> {
    let trimmed = trim(value);
    if trimmed.len() > 254 {
        return None;
    }
    // Byte-wise: this runs on every patient row. Non-ASCII bytes are allowed in both parts
    // (internationalised addresses) as long as the characters are not whitespace or controls.
    let bytes = trimmed.as_bytes();
    let at = bytes.iter().position(|&b| b == b'@')?;
    let (local, domain) = (&bytes[..at], &bytes[at + 1..]);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.first() != Some(&b'.')
        && local.last() != Some(&b'.')
        && !local.windows(2).any(|pair| pair == b"..")
        && local.iter().all(|&b| {
            b >= 0x80
                || (b > b' '
                    && b != 0x7f
                    && !matches!(
                        b,
                        b'"' | b'(' | b')' | b',' | b':' | b';' | b'<' | b'>' | b'[' | b']' | b'\\'
                    ))
        });
    if !local_ok || domain.is_empty() || domain.len() > 253 {
        return None;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80);
        if !ok {
            return None;
        }
        labels += 1;
        last = label;
    }
    // At least two characters (a non-ASCII character is two bytes or more, so check by chars),
    // not all digits (`10.0.0.1` is not a domain name).
    let tld_ok = !last.iter().all(u8::is_ascii_digit)
        && (last.len() >= 2
            && (last.is_ascii()
                || std::str::from_utf8(last).is_ok_and(|t| t.chars().nth(1).is_some())));
    let no_odd_characters = trimmed.is_ascii()
        || !trimmed
            .chars()
            .any(|c| !c.is_ascii() && (c.is_whitespace() || c.is_control()));
    (labels >= 2 && tld_ok && no_odd_characters).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn state_list_is_sorted_and_complete() {
        assert!(US_STATE_CODES.is_well_formed());
        assert_eq!(US_STATE_CODES.len(), 62);
    }

    #[test]
    fn normalizes_states() {
        assert_eq!(normalize_state("MO"), Some("MO"));
        assert_eq!(normalize_state(" ks "), Some("KS"));
        assert_eq!(normalize_state("pr"), Some("PR"));
        assert_eq!(normalize_state("Ap"), Some("AP"));
        assert_eq!(normalize_state("XX"), None);
        assert_eq!(normalize_state("UM"), None);
        assert_eq!(normalize_state("Missouri"), None);
        assert_eq!(normalize_state("M"), None);
        assert_eq!(normalize_state("é"), None);
        assert_eq!(normalize_state(""), None);
    }

    #[test]
    fn accepts_zip_and_zip_plus_four() {
        assert_eq!(normalize_zip("64106"), Some("64106"));
        assert_eq!(normalize_zip(" 03406 "), Some("03406"));
        assert_eq!(normalize_zip("64106-1234"), Some("64106-1234"));
        for bad in [
            "6410",
            "641061",
            "641061234",
            "64106-123",
            "64106 1234",
            "6410a",
            "ABCDE",
            "",
        ] {
            assert_eq!(normalize_zip(bad), None, "{bad}");
        }
    }

    #[test]
    fn normalizes_phones() {
        let phone = |v: &str| normalize_phone(v).map(|p| p.as_str().to_owned());
        assert_eq!(phone("8165550100").as_deref(), Some("816-555-0100"));
        assert_eq!(phone("(816) 555-0100").as_deref(), Some("816-555-0100"));
        assert_eq!(phone("816.555.0100").as_deref(), Some("816-555-0100"));
        assert_eq!(phone("+1 816 555 0100").as_deref(), Some("816-555-0100"));
        assert_eq!(phone("1-816-555-0100").as_deref(), Some("816-555-0100"));
        for bad in [
            "555-0100",
            "816-555-01000",
            "2-816-555-0100",
            "816-555-0100 x12",
            "816-555-O100",
            "123-456-7890",
            "816-155-0100",
            "+44 20 7946 0958",
            "",
        ] {
            assert_eq!(phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn judges_email_plausibility() {
        for good in [
            "newemail@example.com",
            " j.doe+shots@mail.example.org ",
            "o'brien@example.com",
            "josé@bücher.de",
        ] {
            assert_eq!(plausible_email(good), Some(good.trim()), "{good}");
        }
        for bad in [
            "none",
            "n/a",
            "john@",
            "@example.com",
            "john@gmail",
            "john@@example.com",
            "john@example..com",
            "john@-example.com",
            "john doe@example.com",
            ".john@example.com",
            "john..doe@example.com",
            "john@example.c",
            "john@10.0.0.1",
            "john@exa_mple.com",
            "jo\u{a0}hn@example.com",
            "john@exam\u{2003}ple.com",
            "john@example.é",
            "jo\u{7f}hn@example.com",
            "",
        ] {
            assert_eq!(plausible_email(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn phone_output_always_has_the_pattern(value in any::<String>()) {
            if let Some(phone) = normalize_phone(&value) {
                let text = phone.as_str();
                prop_assert_eq!(text.len(), 12);
                for (i, b) in text.bytes().enumerate() {
                    if i == 3 || i == 7 {
                        prop_assert_eq!(b, b'-');
                    } else {
                        prop_assert!(b.is_ascii_digit());
                    }
                }
            }
        }

        #[test]
        fn punctuated_ten_digit_numbers_normalize(
            area in 200u32..1000, exchange in 200u32..1000, line in 0u32..10000,
            style in 0usize..4,
        ) {
            let formatted = format!("{area}-{exchange}-{line:04}");
            let input = match style {
                0 => format!("({area}) {exchange}-{line:04}"),
                1 => format!("{area}.{exchange}.{line:04}"),
                2 => format!("+1 {area} {exchange} {line:04}"),
                _ => format!("{area}{exchange}{line:04}"),
            };
            prop_assert_eq!(normalize_phone(&input).map(|p| p.as_str().to_owned()), Some(formatted));
        }

        #[test]
        fn phone_normalization_is_idempotent(value in "[0-9 ()+.-]{0,20}") {
            if let Some(phone) = normalize_phone(&value) {
                prop_assert_eq!(normalize_phone(phone.as_str()), Some(phone));
            }
        }

        #[test]
        fn zip_accepts_exactly_the_two_shapes(value in "[0-9-]{0,11}") {
            let expected = value.len() == 5 && value.bytes().all(|b| b.is_ascii_digit())
                || value.len() == 10
                    && value.bytes().enumerate().all(|(i, b)| if i == 5 { b == b'-' } else { b.is_ascii_digit() });
            prop_assert_eq!(normalize_zip(&value).is_some(), expected);
        }

        #[test]
        fn email_check_never_panics_and_trims(value in any::<String>()) {
            if let Some(email) = plausible_email(&value) {
                prop_assert_eq!(email, value.trim());
                prop_assert_eq!(email.matches('@').count(), 1);
            }
        }
    }
}
