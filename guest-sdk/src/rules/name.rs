//! Person names: whitespace and the case of names typed in one case.

use std::borrow::Cow;

use super::text::collapse_whitespace;

/// A person name tidied for sending: trimmed, inner whitespace collapsed
/// ([`collapse_whitespace`]) and, when it was typed ALL UPPER or all lower, its case fixed by
/// [`fix_name_case`].
///
/// ```
/// use reqsync_guest::rules::tidy_name;
///
/// assert_eq!(tidy_name("  MARY-JANE   O'NEIL "), "Mary-Jane O'Neil");
/// assert_eq!(tidy_name("de la cruz"), "De La Cruz");
/// assert_eq!(tidy_name("ÉLODIE"), "Élodie");
/// assert_eq!(tidy_name(" McDonald "), "McDonald"); // mixed case: only trimmed
/// assert_eq!(tidy_name("\t"), "");                   // blank stays blank: the caller decides
/// ```
///
/// Borrows from `value` when trimming is all it takes, which is the usual case.
pub fn tidy_name(value: &str) -> Cow<'_, str> {
    match collapse_whitespace(value) {
        Cow::Borrowed(collapsed) => fix_name_case(collapsed),
        Cow::Owned(collapsed) => {
            let recased = match fix_name_case(&collapsed) {
                Cow::Owned(recased) => Some(recased),
                Cow::Borrowed(_) => None,
            };
            Cow::Owned(recased.unwrap_or(collapsed))
        }
    }
}

/// Fixes the case of a name typed entirely in upper case or entirely in lower case, and leaves
/// every other name exactly as typed.
///
/// **The rule.** Only when every cased letter of `value` is upper case (`O'NEIL`), or every one
/// is lower case (`de la cruz`), is the name re-cased: each word gets a capital first letter and
/// lower-case letters after it. A word starts at the beginning and after whitespace, a hyphen
/// (`-`, U+2010, U+2011), an apostrophe (`'`, U+2019) or a period, so `MARY-JANE O'NEIL` becomes
/// `Mary-Jane O'Neil` and `J.R.` stays `J.R.`. The generational suffixes `II`, `III` and `IV`
/// are written in capitals (`SMITH III` → `Smith III`).
///
/// **Why only then.** A name in mixed case was typed by someone who chose its capitals
/// (`McDonald`, `DeShawn`, `van der Berg`, `DiCaprio`), and no rule recovers them: the clinic's
/// spelling is the record. A name in one case carries no such choice (it was typed with caps
/// lock, or by a system that upper-cases everything), and `Mary-Jane` is what a person reads on
/// a ReqCheck report. The price is that `MCDONALD` becomes `Mcdonald` and `MA'AYAN` becomes
/// `Ma'Ayan`: type such names in mixed case at the source to keep them.
///
/// **Unicode.** Letters are mapped with Unicode's case mappings (`ÉLODIE` → `Élodie`,
/// `ΣΟΦΟΚΛΗΣ` → `Σοφοκλης` with the final sigma, `ǄAKULA` → `ǅakula` with the title-case
/// digraph). `İ` (Turkish dotted capital I) becomes `i` rather than `i` plus a combining dot,
/// and a letter whose upper case is more than one letter (`ß` → `SS`) is left as typed and
/// ignored when telling the case the name was typed in (`STRAßE` → `Straße`): a mapping here
/// never changes the number of characters.
///
/// ```
/// use reqsync_guest::rules::fix_name_case;
///
/// assert_eq!(fix_name_case("SMITH JR"), "Smith Jr");
/// assert_eq!(fix_name_case("john smith iii"), "John Smith III");
/// assert_eq!(fix_name_case("YİĞİT"), "Yiğit");
/// assert_eq!(fix_name_case("DeShawn"), "DeShawn");
/// ```
///
/// Does not touch whitespace ([`tidy_name`] does both). Borrows when nothing changes: a name
/// already in mixed case costs one pass over its characters and no allocation.
pub fn fix_name_case(value: &str) -> Cow<'_, str> {
    if !is_single_case(value) {
        return Cow::Borrowed(value);
    }
    let mut fixed: Option<String> = None;
    let mut at = 0;
    for segment in value.split_inclusive(is_word_break) {
        let word = segment.strip_suffix(is_word_break).unwrap_or(segment);
        match &mut fixed {
            Some(out) => out.extend(recased(word)),
            None if !recased(word).eq(word.chars()) => {
                let mut out = String::with_capacity(value.len());
                out.push_str(&value[..at]);
                out.extend(recased(word));
                fixed = Some(out);
            }
            None => {}
        }
        if let Some(out) = &mut fixed {
            out.push_str(&segment[word.len()..]);
        }
        at += segment.len();
    }
    fixed.map_or(Cow::Borrowed(value), Cow::Owned)
}

/// True when `value` has cased letters and they are all upper case or all lower case.
fn is_single_case(value: &str) -> bool {
    let (mut upper, mut lower) = (false, false);
    if value.is_ascii() {
        for b in value.bytes() {
            upper |= b.is_ascii_uppercase();
            lower |= b.is_ascii_lowercase();
        }
    } else {
        for c in value.chars() {
            upper |= c.is_uppercase();
            // `ß` and the like have no one-letter capital, so they appear in names typed in
            // capitals (`STRAßE`): they say nothing about how the name was typed.
            lower |= c.is_lowercase() && c.to_uppercase().len() == 1;
        }
    }
    upper != lower
}

/// Where a new word starts: whitespace, hyphens, apostrophes, periods.
fn is_word_break(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '\u{2010}' | '\u{2011}' | '\'' | '\u{2019}' | '.')
}

/// The characters of `word` re-cased (one character out per character in).
fn recased(word: &str) -> impl Iterator<Item = char> + '_ {
    let suffix = ["ii", "iii", "iv"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s));
    let mut chars = word.chars().peekable();
    let mut before_first_letter = true;
    std::iter::from_fn(move || {
        let c = chars.next()?;
        let out = if suffix {
            c.to_ascii_uppercase()
        } else if before_first_letter {
            title(c)
        } else {
            lower(c, chars.peek().is_none())
        };
        before_first_letter &= !c.is_alphabetic();
        Some(out)
    })
}

/// The title-case form of a word's first letter.
fn title(c: char) -> char {
    match c {
        // The four Latin digraphs with a distinct title-case form.
        'Ǆ' | 'ǅ' | 'ǆ' => 'ǅ',
        'Ǉ' | 'ǈ' | 'ǉ' => 'ǈ',
        'Ǌ' | 'ǋ' | 'ǌ' => 'ǋ',
        'Ǳ' | 'ǲ' | 'ǳ' => 'ǲ',
        _ => single(c, c.to_uppercase()),
    }
}

/// The lower-case form of a letter inside a word.
fn lower(c: char, last_in_word: bool) -> char {
    match c {
        'İ' => 'i',
        'Σ' if last_in_word => 'ς',
        _ => single(c, c.to_lowercase()),
    }
}

/// The mapping when it is one character, else `c` unchanged.
fn single(c: char, mut mapped: impl Iterator<Item = char>) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recases_names_typed_in_one_case() {
        for (typed, sent) in [
            ("MARY-JANE O'NEIL", "Mary-Jane O'Neil"),
            ("de la cruz", "De La Cruz"),
            ("ÉLODIE", "Élodie"),
            ("élodie", "Élodie"),
            ("O’BRIEN", "O’Brien"),
            ("ST.JOHN", "St.John"),
            ("J.R.", "J.R."),
            ("j.r.", "J.R."),
            ("SMITH III", "Smith III"),
            ("smith iv", "Smith IV"),
            ("SMITH-II", "Smith-II"),
            ("IVAN", "Ivan"),
            ("VI", "Vi"),
            ("\"BUD\"", "\"Bud\""),
            ("KAʻIULANI", "Kaʻiulani"),
            ("ΣΟΦΟΚΛΗΣ", "Σοφοκλης"),
            ("ΣΟΦΟΚΛΗΣ-ΣΑΣ", "Σοφοκλης-Σας"),
            ("NGUYỄN", "Nguyễn"),
            ("YİĞİT", "Yiğit"),
            ("ǄAKULA", "ǅakula"),
            ("ǆakula", "ǅakula"),
            ("STRAßE", "Straße"),
            ("ANNE  MARIE", "Anne  Marie"),
        ] {
            assert_eq!(fix_name_case(typed), sent, "{typed}");
        }
    }

    #[test]
    fn leaves_mixed_case_and_caseless_names_as_typed() {
        for typed in [
            "McDonald",
            "DeShawn",
            "van der Berg",
            "DiCaprio",
            "O'Neil",
            "Mary-Jane",
            "MacKENZIE",
            "李小龍",
            "J",
            "",
            "   ",
            "'-.",
        ] {
            assert!(
                matches!(fix_name_case(typed), Cow::Borrowed(b) if b == typed),
                "{typed}"
            );
        }
    }

    #[test]
    fn borrows_when_nothing_changes() {
        assert!(matches!(fix_name_case("J. R."), Cow::Borrowed(_)));
        assert!(matches!(fix_name_case("III"), Cow::Borrowed(_)));
        assert!(matches!(tidy_name(" Smith "), Cow::Borrowed("Smith")));
        assert!(matches!(tidy_name("J"), Cow::Borrowed("J")));
        assert!(matches!(tidy_name("SMITH"), Cow::Owned(_)));
    }

    #[test]
    fn tidies_whitespace_and_case_together() {
        assert_eq!(tidy_name("  MARY-JANE \t O'NEIL\n"), "Mary-Jane O'Neil");
        assert_eq!(tidy_name("ANA\u{a0}\u{a0}MARIA"), "Ana Maria");
        assert_eq!(tidy_name("van  der Berg"), "van der Berg");
        assert_eq!(tidy_name(" \t "), "");
    }

    proptest! {
        #[test]
        fn tidy_name_is_idempotent(value in any::<String>()) {
            let once = tidy_name(&value).into_owned();
            prop_assert_eq!(tidy_name(&once), once.as_str());
        }

        #[test]
        fn recasing_keeps_the_letters(value in "[a-zA-Zéèçñüßø' .-]{0,30}") {
            let fixed = fix_name_case(&value);
            prop_assert_eq!(fixed.chars().count(), value.chars().count());
            prop_assert_eq!(fixed.to_lowercase(), value.to_lowercase());
        }

        #[test]
        fn mixed_case_names_are_never_touched(
            upper in "[A-ZÉ]", lower in "[a-zé]", rest in "[a-zA-Zé' -]{0,20}",
        ) {
            let name = format!("{rest}{upper}{rest}{lower}{rest}");
            prop_assert!(matches!(fix_name_case(&name), Cow::Borrowed(b) if b == name));
        }

        #[test]
        fn single_case_words_come_out_capitalised(
            words in proptest::collection::vec("[a-z]{2,8}", 1..4), upper in any::<bool>(),
        ) {
            let typed = words.join(" ");
            let typed = if upper { typed.to_uppercase() } else { typed };
            let fixed = fix_name_case(&typed);
            for word in fixed.split(' ') {
                let mut chars = word.chars();
                prop_assert!(chars.next().is_some_and(char::is_uppercase), "{}", fixed);
                if !["II", "III", "IV"].contains(&word) {
                    prop_assert!(chars.all(char::is_lowercase), "{}", fixed);
                }
            }
        }
    }
}
