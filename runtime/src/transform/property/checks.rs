//! The properties every outcome of every generated row must have.

use serde::Serialize;
use serde_json::Value;

use super::generate::{EDGE_DATES, EDGE_INTEGERS};
use crate::reqcheck::record_schema::RecordSchema;
use crate::transform::info::{ModuleInfo, ValueHint};
use crate::transform::outcome::{Finding, RowOutcome, Verdict, host_codes};

/// What `reqsync transform test` holds a module to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Property {
    /// The module's declaration is usable: known target, output fields on the target's
    /// whitelist, key column among the inputs, hints that fit their columns.
    Declaration,
    /// The module's example cases give the expected outcomes.
    Examples,
    /// No trap, no deadline overrun, no memory overrun, no broken WIT contract (bad spans,
    /// invalid JSON, undeclared fields, a batch refused because of one row).
    NoFault,
    /// The same row twice on one instance gives the same outcome.
    Deterministic,
    /// The same row on a fresh instance gives the same outcome (no state carried between rows).
    FreshInstance,
    /// A row inside a batch gives the same outcome as alone.
    BatchConsistent,
    /// Every emitted record conforms to the target's ReqCheck record schema.
    RecordSchema,
    /// Every emitted record carries the fields the module declared required.
    RequiredFields,
    /// Every reject carries findings with a kebab-case code and a field name; skips and
    /// warnings carry codes too.
    FindingsWellFormed,
    /// No finding, warning or skip message quotes a value of the row (messages reach logs).
    NoValuesInMessages,
}

impl Property {
    pub const ALL: [Property; 10] = [
        Property::Declaration,
        Property::Examples,
        Property::NoFault,
        Property::Deterministic,
        Property::FreshInstance,
        Property::BatchConsistent,
        Property::RecordSchema,
        Property::RequiredFields,
        Property::FindingsWellFormed,
        Property::NoValuesInMessages,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Property::Declaration => "declaration",
            Property::Examples => "examples",
            Property::NoFault => "no-fault",
            Property::Deterministic => "deterministic",
            Property::FreshInstance => "fresh-instance",
            Property::BatchConsistent => "batch-consistent",
            Property::RecordSchema => "record-schema",
            Property::RequiredFields => "required-fields",
            Property::FindingsWellFormed => "findings-well-formed",
            Property::NoValuesInMessages => "no-values-in-messages",
        }
    }

    #[cfg(test)]
    pub(crate) fn from_id(id: &str) -> Option<Property> {
        Self::ALL.into_iter().find(|p| p.id() == id)
    }
}

/// One broken property, with what was seen. Details name fields and codes, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub property: Property,
    pub detail: String,
}

impl Violation {
    pub fn new(property: Property, detail: impl Into<String>) -> Self {
        Self {
            property,
            detail: detail.into(),
        }
    }
}

impl Violation {
    /// Whether `other` is the same failure for shrinking: the same property and, for a fault,
    /// the same host code (a row that traps does not shrink into one that times out).
    pub(crate) fn same_failure(&self, other: &Violation) -> bool {
        let code = |v: &Violation| {
            host_codes::ALL
                .iter()
                .find(|c| v.detail.starts_with(&format!("{c}:")))
                .copied()
        };
        self.property == other.property
            && (self.property != Property::NoFault || code(self) == code(other))
    }
}

/// Checks one row's outcome, given the row as the module received it.
pub fn check_outcome(
    info: &ModuleInfo,
    schema: &RecordSchema,
    row: &[Option<Value>],
    outcome: &RowOutcome,
) -> Result<(), Violation> {
    let quotable = Quotable::new(info, row);
    match &outcome.verdict {
        Verdict::Reject { findings } => {
            if let Some(f) = findings
                .iter()
                .find(|f| host_codes::ALL.contains(&f.code.as_str()))
            {
                return Err(Violation::new(
                    Property::NoFault,
                    format!("{}: {} (field `{}`)", f.code, f.message, f.field),
                ));
            }
            if findings.is_empty() {
                return Err(Violation::new(
                    Property::FindingsWellFormed,
                    "a reject without findings",
                ));
            }
            for f in findings {
                well_formed(f, "reject finding")?;
                quotable.check(&f.message, "reject finding")?;
            }
        }
        Verdict::Skip { code, message } => {
            if !is_kebab(code) {
                return Err(Violation::new(
                    Property::FindingsWellFormed,
                    format!("skip code `{code}` is not kebab-case"),
                ));
            }
            quotable.check(message, "skip message")?;
        }
        Verdict::Emit { record, warnings } => {
            for w in warnings {
                well_formed(w, "warning")?;
                quotable.check(&w.message, "warning")?;
            }
            for field in info.output_fields.iter().filter(|f| f.required) {
                if record.get(&field.name).is_none_or(Value::is_null) {
                    return Err(Violation::new(
                        Property::RequiredFields,
                        format!("emitted a record without required field `{}`", field.name),
                    ));
                }
            }
            let violations = schema.violations(&Value::Object(record.fields().clone()));
            if !violations.is_empty() {
                let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
                return Err(Violation::new(
                    Property::RecordSchema,
                    format!(
                        "emitted record breaks the `{}` schema: {}",
                        schema.target.name,
                        list.join("; ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn well_formed(f: &Finding, what: &str) -> Result<(), Violation> {
    if f.field.trim().is_empty() {
        return Err(Violation::new(
            Property::FindingsWellFormed,
            format!("a {what} with code `{}` names no field", f.code),
        ));
    }
    if !is_kebab(&f.code) {
        return Err(Violation::new(
            Property::FindingsWellFormed,
            format!(
                "{what} code `{}` (field `{}`) is not kebab-case",
                f.code, f.field
            ),
        ));
    }
    Ok(())
}

/// `blank`, `out-of-range`, `before-1900`: lower-case ASCII words joined by single hyphens.
fn is_kebab(code: &str) -> bool {
    !code.is_empty()
        && code.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The row values a message must not contain.
///
/// Only values of at least four characters count (shorter ones occur in ordinary words), and
/// not the values the module's own declaration or the generator's fixed boundaries name: a
/// message may say "before 1900-01-01" or "not between 1 and 2147483647" whatever the row. A row
/// value found only inside such a declared text ("1474" inside "2147483647") is not a quote.
struct Quotable {
    values: Vec<String>,
    declared: Vec<String>,
}

impl Quotable {
    fn new(info: &ModuleInfo, row: &[Option<Value>]) -> Self {
        let mut declared: Vec<String> = EDGE_DATES.iter().map(|d| (*d).to_owned()).collect();
        declared.extend(EDGE_INTEGERS.iter().map(ToString::to_string));
        for c in &info.input_columns {
            declared.push(c.name.clone());
            for h in &c.hints {
                match h {
                    ValueHint::Range { min, max } => {
                        declared.extend([min.to_string(), max.to_string()])
                    }
                    ValueHint::Dates { min, max } => declared.extend([min.clone(), max.clone()]),
                    ValueHint::OneOf(codes) => declared.extend(codes.iter().cloned()),
                    ValueHint::MaxLength(n) => declared.push(n.to_string()),
                    ValueHint::Pattern(_) => {}
                }
            }
        }
        declared.extend(info.output_fields.iter().map(|f| f.name.clone()));
        let values = row
            .iter()
            .flatten()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| s.chars().count() >= 4 && !declared.contains(s))
            .collect();
        Self { values, declared }
    }

    /// Whether `message` holds `value` somewhere other than inside a longer declared text.
    fn quotes(&self, message: &str, value: &str) -> bool {
        // The usual case, checked once per value of every finding of every generated row.
        if !message.contains(value) {
            return false;
        }
        let declared: Vec<(usize, usize)> = self
            .declared
            .iter()
            .filter(|d| d.len() > value.len())
            .flat_map(|d| spans(message, d))
            .collect();
        spans(message, value).any(|(start, end)| {
            !declared
                .iter()
                .any(|&(d_start, d_end)| d_start <= start && end <= d_end)
        })
    }

    fn check(&self, message: &str, what: &str) -> Result<(), Violation> {
        match self.values.iter().position(|v| self.quotes(message, v)) {
            // The detail says which message, not what it quoted: this text reaches CI logs.
            Some(_) => Err(Violation::new(
                Property::NoValuesInMessages,
                format!("a {what} message quotes a value of the row"),
            )),
            None => Ok(()),
        }
    }
}

/// Every occurrence of `needle` in `haystack`, overlapping ones too, as byte spans.
fn spans<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    haystack
        .char_indices()
        .filter(move |(i, _)| !needle.is_empty() && haystack[*i..].starts_with(needle))
        .map(move |(i, _)| (i, i + needle.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated ZIP code `1474` is not quoted by a message naming the declared bound
    /// 2147483647, which happens to contain it; the same value on its own, or a row value that
    /// contains a declared text, is.
    #[test]
    fn a_row_value_inside_a_declared_text_is_not_a_quote() {
        let quotable = Quotable {
            values: vec!["1474".into(), "21474836470".into()],
            declared: vec!["2147483647".into()],
        };
        assert!(
            quotable
                .check("patient_number: above 2147483647", "reject")
                .is_ok()
        );
        assert!(
            quotable
                .check("zip 1474 is not a ZIP code", "reject")
                .is_err()
        );
        assert!(
            quotable
                .check("2147483647 and then 1474", "reject")
                .is_err()
        );
        assert!(
            quotable
                .check("patient 21474836470 is too large", "reject")
                .is_err()
        );
    }

    #[test]
    fn kebab_codes_are_lower_case_words_joined_by_hyphens() {
        for ok in ["blank", "out-of-range", "before-1900", "x"] {
            assert!(is_kebab(ok), "{ok}");
        }
        for bad in ["", "Blank", "out_of_range", "-x", "x-", "a--b", "a b"] {
            assert!(!is_kebab(bad), "{bad}");
        }
    }

    #[test]
    fn a_trap_and_a_timeout_are_different_failures_of_the_same_property() {
        let trap = Violation::new(Property::NoFault, "transform-trap: trapped (field `*`)");
        let again = Violation::new(Property::NoFault, "transform-trap: other words");
        let timeout = Violation::new(Property::NoFault, "transform-timeout: too slow");
        let schema = Violation::new(Property::RecordSchema, "emitted record breaks …");
        assert!(trap.same_failure(&again));
        assert!(!trap.same_failure(&timeout));
        assert!(!trap.same_failure(&schema));
        assert!(schema.same_failure(&Violation::new(Property::RecordSchema, "another field")));
    }

    #[test]
    fn property_ids_round_trip() {
        for p in Property::ALL {
            assert_eq!(Property::from_id(p.id()), Some(p));
        }
    }
}
