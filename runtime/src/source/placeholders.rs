//! Binding the window start to the `?` placeholders of a query.
//!
//! The original extractor's queries use a bare `?` for "the date of the last import", possibly
//! several times. Every `?` outside string literals, quoted identifiers and comments is rewritten
//! to the engine's first positional parameter, so one bound value serves them all and the value
//! never enters the SQL text.

/// The parameter syntax of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderStyle {
    /// `?1`
    Sqlite,
    /// `$1`
    Postgres,
    /// `@P1`
    SqlServer,
}

impl PlaceholderStyle {
    fn first_parameter(self) -> &'static str {
        match self {
            PlaceholderStyle::Sqlite => "?1",
            PlaceholderStyle::Postgres => "$1",
            PlaceholderStyle::SqlServer => "@P1",
        }
    }
}

/// Rewrites every bindable `?` of `sql` to the first parameter of `style`; returns the new SQL
/// and how many placeholders it bound.
pub fn bind_window_start(sql: &str, style: PlaceholderStyle) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut count = 0;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '\'' | '"' | '`' | '[' => {
                // Literal or quoted identifier: copy through the closing quote. A doubled quote
                // ('it''s') closes and immediately reopens, which this loop handles naturally.
                let close = if c == '[' { ']' } else { c };
                out.push(c);
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == close {
                        break;
                    }
                }
            }
            '-' if chars.peek().map(|&(_, d)| d) == Some('-') => {
                out.push(c);
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek().map(|&(_, d)| d) == Some('*') => {
                // Block comments nest in PostgreSQL and SQL Server.
                out.push(c);
                if let Some((_, star)) = chars.next() {
                    out.push(star);
                }
                let mut depth = 1usize;
                let mut prev = '\0';
                for (_, d) in chars.by_ref() {
                    out.push(d);
                    if prev == '/' && d == '*' {
                        depth += 1;
                        prev = '\0';
                        continue;
                    }
                    if prev == '*' && d == '/' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                        prev = '\0';
                        continue;
                    }
                    prev = d;
                }
            }
            '?' if chars.peek().is_some_and(|&(_, d)| d.is_ascii_digit()) => {
                // Already numbered (`?1`): the author chose the parameter explicitly.
                out.push(c);
            }
            '?' => {
                out.push_str(style.first_parameter());
                count += 1;
            }
            _ => out.push(c),
        }
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(sql: &str) -> (String, usize) {
        bind_window_start(sql, PlaceholderStyle::Sqlite)
    }

    #[test]
    fn every_bare_placeholder_binds_the_first_parameter() {
        let (sql, n) = sqlite("SELECT * FROM a WHERE x >= ? OR y >= ?");
        assert_eq!(sql, "SELECT * FROM a WHERE x >= ?1 OR y >= ?1");
        assert_eq!(n, 2);
        let (sql, _) = bind_window_start("WHERE x >= ?", PlaceholderStyle::Postgres);
        assert_eq!(sql, "WHERE x >= $1");
        let (sql, _) = bind_window_start("WHERE x >= ?", PlaceholderStyle::SqlServer);
        assert_eq!(sql, "WHERE x >= @P1");
    }

    #[test]
    fn question_marks_in_string_literals_are_not_placeholders() {
        let (sql, n) = sqlite("SELECT 'why?', 'it''s ?' FROM t WHERE d >= ?");
        assert_eq!(sql, "SELECT 'why?', 'it''s ?' FROM t WHERE d >= ?1");
        assert_eq!(n, 1);
    }

    #[test]
    fn question_marks_in_quoted_identifiers_are_not_placeholders() {
        let (sql, n) = sqlite("SELECT \"a?\", [b?], `c?` FROM t");
        assert_eq!(sql, "SELECT \"a?\", [b?], `c?` FROM t");
        assert_eq!(n, 0);
    }

    #[test]
    fn question_marks_in_comments_are_not_placeholders() {
        let (sql, n) =
            sqlite("-- changed since ?\nSELECT 1 /* why ? /* nested ? */ still ? */ WHERE d >= ?");
        assert_eq!(
            sql,
            "-- changed since ?\nSELECT 1 /* why ? /* nested ? */ still ? */ WHERE d >= ?1"
        );
        assert_eq!(n, 1);
    }

    #[test]
    fn numbered_placeholders_are_left_alone() {
        let (sql, n) = sqlite("WHERE d >= ?1 AND e >= ?");
        assert_eq!(sql, "WHERE d >= ?1 AND e >= ?1");
        assert_eq!(n, 1);
    }

    #[test]
    fn unterminated_literal_does_not_panic() {
        let (sql, n) = sqlite("SELECT 'open ?");
        assert_eq!(sql, "SELECT 'open ?");
        assert_eq!(n, 0);
    }

    #[test]
    fn non_ascii_text_is_preserved() {
        let (sql, n) = sqlite("SELECT 'Zoë' AS n WHERE d >= ? -- café");
        assert_eq!(sql, "SELECT 'Zoë' AS n WHERE d >= ?1 -- café");
        assert_eq!(n, 1);
    }
}
