//! Binding the window start to the `?` placeholders of a query.
//!
//! The original extractor's queries use a bare `?` for "the date of the last import", possibly
//! several times. Every `?` outside string literals, quoted identifiers and comments is rewritten
//! to a parameter, so the value never enters the SQL text. SQLite and PostgreSQL reuse their
//! first positional parameter for every `?`, so one bound value serves them all. SQL Server gets
//! one parameter per `?` (`@P1`, `@P2`, …), each bound to the window start: the source asks the
//! server which type each is compared with (`sp_describe_undeclared_parameters`), and SQL Server
//! refuses to describe a parameter used more than once in a batch (error 11508, "The undeclared
//! parameter '@P1' is used more than once in the batch being analyzed").

/// The parameter syntax of an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceholderStyle {
    /// `?1`
    Sqlite,
    /// `$1`
    Postgres,
    /// `@P1`, `@P2`, …: one per placeholder.
    SqlServer,
}

impl PlaceholderStyle {
    /// The parameter the `n`th placeholder (1-based) becomes.
    fn parameter(self, n: usize) -> String {
        match self {
            PlaceholderStyle::Sqlite => "?1".to_owned(),
            PlaceholderStyle::Postgres => "$1".to_owned(),
            PlaceholderStyle::SqlServer => format!("@P{n}"),
        }
    }
}

/// Rewrites every bindable `?` of `sql` to a parameter of `style` (see the module docs); returns
/// the new SQL and how many placeholders it bound. With [`PlaceholderStyle::SqlServer`], the
/// parameters are `@P1` to `@P{count}`, each to be bound to the window start.
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
                count += 1;
                out.push_str(&style.parameter(count));
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
        let (sql, _) = bind_window_start("WHERE x >= ? OR y >= ?", PlaceholderStyle::Postgres);
        assert_eq!(sql, "WHERE x >= $1 OR y >= $1");
    }

    #[test]
    fn sql_server_gets_one_parameter_per_placeholder() {
        // SQL Server cannot describe a parameter used twice (error 11508).
        let (sql, n) = bind_window_start(
            "WHERE x >= ? /* ? */ OR y >= '?' OR z >= ?",
            PlaceholderStyle::SqlServer,
        );
        assert_eq!(sql, "WHERE x >= @P1 /* ? */ OR y >= '?' OR z >= @P2");
        assert_eq!(n, 2);
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
