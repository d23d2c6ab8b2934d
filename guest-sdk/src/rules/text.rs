//! Whitespace clean-up.

use std::borrow::Cow;

/// Trims `value` and collapses every inner run of whitespace (spaces, tabs, line breaks,
/// no-break spaces — anything Unicode calls whitespace) to one ASCII space.
///
/// Borrows when the value is already clean, which is the common case. Names typed into clinic
/// systems carry doubled spaces and stray tabs; ReqCheck matches patients by what it stores, so
/// `"Mary  Ann"` and `"Mary Ann"` must not become two spellings.
pub fn collapse_whitespace(value: &str) -> Cow<'_, str> {
    let trimmed = trim(value);
    if is_collapsed(trimmed) {
        return Cow::Borrowed(trimmed);
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut in_space = false;
    for c in trimmed.chars() {
        if c.is_whitespace() {
            in_space = true;
        } else {
            if in_space {
                out.push(' ');
                in_space = false;
            }
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// True when `trimmed` has no whitespace other than single ASCII spaces.
fn is_collapsed(trimmed: &str) -> bool {
    // One byte-wise pass for the usual all-ASCII name, avoiding UTF-8 decoding.
    let mut previous_space = false;
    for &byte in trimmed.as_bytes() {
        if byte == b' ' {
            if previous_space {
                return false;
            }
            previous_space = true;
        } else if byte >= 0x80 {
            return is_collapsed_unicode(trimmed);
        } else if byte.is_ascii_whitespace() || byte == 0x0b {
            return false;
        } else {
            previous_space = false;
        }
    }
    true
}

fn is_collapsed_unicode(trimmed: &str) -> bool {
    let mut previous_space = false;
    for c in trimmed.chars() {
        if c == ' ' {
            if previous_space {
                return false;
            }
            previous_space = true;
        } else if c.is_whitespace() {
            return false;
        } else {
            previous_space = false;
        }
    }
    true
}

/// `value` trimmed, or `None` when nothing is left: the "omit when blank" rule, since ReqCheck
/// must never receive an empty string for an optional field.
pub fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(trim).filter(|trimmed| !trimmed.is_empty())
}

/// `str::trim` (Unicode whitespace) with a shortcut for the usual value that starts and ends
/// with a visible ASCII character: this runs for nearly every text cell.
#[inline]
pub(crate) fn trim(value: &str) -> &str {
    match (value.as_bytes().first(), value.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => value,
        _ => value.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn collapses_inner_runs_and_trims() {
        assert_eq!(collapse_whitespace("  Mary \t Ann\n"), "Mary Ann");
        assert_eq!(collapse_whitespace("Mary\u{a0}\u{a0}Ann"), "Mary Ann");
        assert_eq!(collapse_whitespace("O'Brien-Smith"), "O'Brien-Smith");
        assert_eq!(collapse_whitespace("   "), "");
        assert!(matches!(
            collapse_whitespace("José Nguyễn"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            collapse_whitespace(" Smith "),
            Cow::Borrowed("Smith")
        ));
    }

    #[test]
    fn non_blank_trims_and_drops_empty() {
        assert_eq!(non_blank(Some("  12 Main St ")), Some("12 Main St"));
        assert_eq!(non_blank(Some(" \t ")), None);
        assert_eq!(non_blank(Some("")), None);
        assert_eq!(non_blank(None), None);
    }

    proptest! {
        #[test]
        fn collapse_is_idempotent(value in any::<String>()) {
            let once = collapse_whitespace(&value).into_owned();
            prop_assert_eq!(collapse_whitespace(&once), once.as_str());
        }

        #[test]
        fn collapse_leaves_no_double_or_edge_spaces(value in "[ \ta-z\u{a0}é]{0,30}") {
            let out = collapse_whitespace(&value);
            prop_assert!(!out.contains("  "));
            prop_assert_eq!(out.trim(), &*out);
            prop_assert!(out.chars().all(|c| c == ' ' || !c.is_whitespace()));
        }

        #[test]
        fn non_blank_is_idempotent(value in any::<String>()) {
            let once = non_blank(Some(&value));
            prop_assert_eq!(non_blank(once), once);
        }
    }
}
