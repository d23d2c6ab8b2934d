//! URLs as they may be written down: in logs, error messages, run reports, the run ledger and
//! the audit trail.
//!
//! A URL can carry a credential in two places: its user part (`user:password@`, or an access
//! token given as the user name) and its query (`?password=…`, `?access_token=…`). Where URLs
//! are configured, both are refused or kept out of the URL; yet everything that writes a URL
//! where people or files keep it goes through [`RedactedUrl`] anyway, so that the guarantee
//! does not rest on every URL having been checked first: an error about a URL that failed its
//! check quotes that very URL, and the audit trail is kept for years.

use std::fmt::{self, Write as _};

/// What is written for text that is not `scheme://…` at all, e.g. an ADO-style connection
/// string (`Server=db;User Id=sa;Password=…`): there is no telling where a secret is in it.
pub(crate) const NOT_A_URL: &str = "(not a URL; not shown, as it may hold a password)";

/// Displays a URL without its user part (replaced by `***`), its query and its fragment
/// (replaced by `?…` / `#…`), and without anything after a `;` (a JDBC-style parameter list).
/// Control characters are escaped, so a URL cannot forge a log line.
///
/// Works on the text rather than on a parsed URL: the URLs worth hiding a password in are
/// often the ones a parser refuses (a password with an unencoded `@`, `/` or `?`).
#[derive(Debug, Clone, Copy)]
pub struct RedactedUrl<'a>(&'a str);

impl<'a> RedactedUrl<'a> {
    pub fn new(url: &'a str) -> Self {
        Self(url)
    }
}

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((scheme, rest)) = self.0.split_once("://").filter(|(s, _)| is_scheme(s)) else {
            return f.write_str(NOT_A_URL);
        };
        write!(f, "{scheme}://")?;
        // The user part ends at the *last* `@`: a password may hold an unencoded `@`, `/` or
        // `?`. An `@` that was in a path or a query masks too much, which is the safe mistake.
        let rest = match rest.rsplit_once('@') {
            Some((_, after)) => {
                f.write_str("***@")?;
                after
            }
            None => rest,
        };
        let (kept, dropped) = match rest.find(['?', '#', ';']) {
            Some(at) => (&rest[..at], rest[at..].chars().next()),
            None => (rest, None),
        };
        for c in kept.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        if let Some(separator) = dropped {
            write!(f, "{separator}…")?;
        }
        Ok(())
    }
}

/// RFC 3986's `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`. Anything else before `://` (an
/// `=`, a space, a `:` as in `jdbc:sqlserver://`) means the text is not a URL this can read.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str) -> String {
        RedactedUrl::new(url).to_string()
    }

    #[test]
    fn a_url_without_credentials_is_shown_as_it_is() {
        for url in [
            "https://reqcheck.example.org",
            "https://reqcheck.example.org:8443/api/",
            "http://127.0.0.1:3000/heartbeat",
            "http://[::1]:3000",
            "sqlite://clinic.db",
            "sqlite:///var/lib/reqsync/clinic.db",
            "sqlserver://db.clinic.local:1433/clinic",
        ] {
            assert_eq!(shown(url), url);
        }
    }

    #[test]
    fn the_user_part_is_masked_whole() {
        assert_eq!(
            shown("http://user:s3cret@127.0.0.1:8080/x"),
            "http://***@127.0.0.1:8080/x"
        );
        // A token given as the user name is a credential too.
        assert_eq!(shown("https://ghp_t0ken@host/"), "https://***@host/");
        assert_eq!(shown("https://u:p%40ss@host"), "https://***@host");
        assert_eq!(
            shown("postgres://reader@db/clinic"),
            "postgres://***@db/clinic"
        );
    }

    #[test]
    fn a_password_with_unencoded_delimiters_is_masked_to_the_last_at() {
        assert_eq!(shown("postgres://u:p@ss/w?rd@db/x"), "postgres://***@db/x");
        assert_eq!(shown("postgres://u:pa/ss@db/x"), "postgres://***@db/x");
        assert_eq!(shown("postgres://u:1/a@db"), "postgres://***@db");
    }

    #[test]
    fn queries_fragments_and_parameter_lists_are_dropped() {
        assert_eq!(
            shown("https://host/p?access_token=abc&x=1"),
            "https://host/p?…"
        );
        assert_eq!(
            shown("postgres://u@db/x?sslmode=disable&password=hunter2"),
            "postgres://***@db/x?…"
        );
        assert_eq!(shown("https://host/#token=abc"), "https://host/#…");
        assert_eq!(
            shown("sqlserver://db;user=sa;password=hunter2"),
            "sqlserver://db;…"
        );
        // An `@` in the query masks the host as well: too much, never too little.
        assert_eq!(shown("https://host/?contact=a@b"), "https://***@b");
    }

    #[test]
    fn text_that_is_not_a_url_is_not_shown() {
        for text in [
            "Server=db;User Id=sa;Password=hunter2",
            "jdbc:sqlserver://db:1433;password=hunter2",
            "Data Source=tcp://db;Password=hunter2",
            "://hunter2@db",
            "hunter2",
            "",
        ] {
            assert_eq!(shown(text), NOT_A_URL, "{text:?}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            shown("https://host/a\nlevel=ERROR forged"),
            "https://host/a\\nlevel=ERROR forged"
        );
    }
}
