//! A quick way to accept a rendered body whose records were written whole.
//!
//! The body check parses the whole body, and most of a body is record text the host wrote
//! itself, when the module emitted the record (the record check, `transform/declared.rs`),
//! and found to keep the target's rules ([`Record::fits`]). Here the text of each record,
//! found in the body in the order of the records, is replaced by a small marker, and only
//! that skeleton is parsed: the template's own text, any other expression's output, and the
//! markers.
//!
//! Why a skeleton that passes means a body that passes:
//! - A marker is the JSON string `"\u0001"`, whose value is U+0001. JSON text can only spell
//!   that character as the escape `\u0001` (a raw control character in a string is invalid),
//!   and the skeleton keeps no body text containing the escape (such a body goes to the full
//!   check); so a string whose value is exactly U+0001 is a whole marker, read from its own
//!   opening quote to its own closing quote. A marker that ends up anything else (inside a
//!   longer string, say, after a backslash the template wrote) is not counted.
//! - Only markers read as elements of the records array are counted, and every marker
//!   written must be counted: so each counted marker stands at a value position of that
//!   array, exactly where the body holds the text of a record known to keep the rules.
//!   Putting that text back there, a JSON object, keeps the body valid and changes nothing
//!   outside that value. Where the text came from does not matter (an expression writing one
//!   record, `{{ records }}` writing all of them, or the template spelling the same bytes):
//!   the bytes are what is sent.
//! - So the body's records array holds exactly the skeleton's elements, each marker standing
//!   for a record known to keep the rules; the other elements are checked here as the full
//!   check would.
//!
//! It only ever accepts. Anything else (no record written whole, a record written inside a
//! string, a record not known to keep the rules, the escape in the template's own text, any
//! element the full check would refuse) goes to the full check, which alone words errors.

use super::record_fault;
use crate::json_shape::{Element, body_elements};
use crate::reqcheck::Target;
use crate::transform::Record;

/// How a marker's key is spelt in JSON text.
const MARKER_ESCAPE: &str = "\\u0001";
/// A marker, as written into the skeleton.
const MARKER: &str = "\"\\u0001\"";
/// A marker's value once read.
const MARKER_VALUE: &str = "\u{1}";

/// Whether `body`, rendered from `records`, is certainly a body the full check accepts.
pub(super) fn accepts(body: &str, records: &[Record], target: &Target) -> bool {
    let Some((skeleton, markers)) = skeleton(body, records, target) else {
        return false;
    };
    // Parsed element by element: a value per marker cost as much as the rest of the check.
    let mut counted = 0;
    let mut fine = true;
    let elements = body_elements(&skeleton, target.body_key, |element| match element {
        Element::Text(MARKER_VALUE) => counted += 1,
        // (A key U+0001, a marker read as a key, is an unknown key like any other.) An object
        // here is one the template made, not a record written whole: its keys can be unknown,
        // missing or repeated, and the full check words why.
        Element::Object(keys) => fine &= record_fault(target, keys).is_none(),
        Element::Text(_) | Element::Other => fine = false,
    });
    // Every marker in the array (none sits elsewhere in the body), and one element per record.
    fine && elements.is_ok_and(|n| n == Some(records.len())) && counted == markers
}

/// The body with the text of each record replaced by its marker, and how many were; `None`
/// when there is nothing to gain or the body spells the marker's escape itself.
///
/// Records are looked for in their order, each after the last one found; the first one not
/// found ends the search (the rest of the body is kept as it is and checked like any other
/// element), so the body is scanned once at most.
fn skeleton(body: &str, records: &[Record], target: &Target) -> Option<(String, usize)> {
    let mut skeleton = String::with_capacity(64 * records.len().min(4096) + 64);
    let mut kept = 0;
    let mut found = 0;
    for record in records {
        let text = record.json();
        let Some(start) = find(body.as_bytes(), kept, text.as_bytes()) else {
            break;
        };
        if !record.fits(target) {
            return None;
        }
        // `text` is whole UTF-8 starting with `{`, so `start` and its end are char boundaries.
        keep(&mut skeleton, body.get(kept..start)?)?;
        skeleton.push_str(MARKER);
        kept = start + text.len();
        found += 1;
    }
    if found == 0 {
        return None;
    }
    keep(&mut skeleton, body.get(kept..)?)?;
    Some((skeleton, found))
}

/// Where `text` next occurs in `body` at or after `from`. Candidates are the places its
/// first byte (a record's `{`) occurs: where records are written whole that is the first
/// one, a few bytes on, so this costs one `memchr` and one compare. (A general substring
/// search prepares each needle first, which cost more than the whole check.)
fn find(body: &[u8], from: usize, text: &[u8]) -> Option<usize> {
    let first = *text.first()?;
    let mut at = from;
    while let Some(i) = memchr::memchr(first, body.get(at..)?) {
        let start = at + i;
        if body[start..].starts_with(text) {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

/// Appends text kept from the body, unless it spells the marker's escape.
fn keep(skeleton: &mut String, text: &str) -> Option<()> {
    if text.contains(MARKER_ESCAPE) {
        return None;
    }
    skeleton.push_str(text);
    Some(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::render::{BodyTemplate, NAME, Rows};
    use crate::reqcheck::targets::{PATIENT_DATA, VACCINE_DOSE_DATA};

    fn patient(number: u32) -> String {
        format!(
            r#"{{"patient_number":{number},"first_name":"Ann","last_name":"Lee","dob":"2001-02-03","hd_mpfile_updated_at":"2016-09-28T12:00:00-05:00"}}"#
        )
    }

    /// Records as the record check makes them: known to keep the patients' rules.
    fn fitting(n: u32) -> Vec<Record> {
        (1..=n)
            .map(|i| Record::from_host_json(&patient(i), Some(&PATIENT_DATA)))
            .collect()
    }

    fn template(source: &str) -> BodyTemplate {
        BodyTemplate::from_source(Path::new("t.json.j2"), source.to_owned(), &PATIENT_DATA)
            .expect("the template loads")
    }

    /// A template that would fail its load-time render: compiled without it.
    fn unchecked(source: &str) -> BodyTemplate {
        let mut env = template(DEFAULT).env;
        env.add_template_owned(NAME, source.to_owned())
            .expect("compiles");
        BodyTemplate {
            env,
            ..template(DEFAULT)
        }
    }

    /// What the skeleton says and what the full check says, for one rendering.
    fn verdicts(t: &BodyTemplate, records: &[Record]) -> (bool, bool) {
        let body = t.render_body(records, Rows::Real).expect("renders");
        (
            accepts(&body, records, t.target),
            t.check(&body, records.len()).is_ok(),
        )
    }

    const DEFAULT: &str = include_str!("../../../templates/patient_data.json.j2");

    #[test]
    fn the_default_templates_are_accepted_from_their_skeleton() {
        assert_eq!(verdicts(&template(DEFAULT), &fitting(3)), (true, true));
        let dose = r#"{"patient_number":1,"cvx_code":18,"date_administered":"2016-07-27","hd_imfile_updated_at":"2025-02-22T18:42:39-06:00"}"#;
        let doses = vec![Record::from_host_json(dose, Some(&VACCINE_DOSE_DATA)); 2];
        let t = BodyTemplate::from_source(
            Path::new("d.json.j2"),
            include_str!("../../../templates/vaccine_dose_data.json.j2").to_owned(),
            &VACCINE_DOSE_DATA,
        )
        .expect("loads");
        assert_eq!(verdicts(&t, &doses), (true, true));
    }

    #[test]
    fn a_record_not_known_to_keep_the_rules_goes_to_the_full_check() {
        let records: Vec<Record> = (1..=2)
            .map(|i| Record::from_host_json(&patient(i), None))
            .collect();
        assert_eq!(verdicts(&template(DEFAULT), &records), (false, true));
        // Known to keep another record type's rules is not knowing.
        let other: Vec<Record> = (1..=2)
            .map(|i| Record::from_host_json(&patient(i), Some(&VACCINE_DOSE_DATA)))
            .collect();
        assert_eq!(verdicts(&template(DEFAULT), &other), (false, true));
    }

    #[test]
    fn records_out_of_order_or_repeated_are_judged_like_the_full_check() {
        let reversed = template(
            r#"{"patient_data": [{% for r in records | reverse %}{{ r }}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        );
        assert_eq!(verdicts(&reversed, &fitting(3)), (true, true));
        let first_twice = template(
            r#"{"patient_data": [{% for r in records %}{{ records[0] }}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        );
        assert_eq!(verdicts(&first_twice, &fitting(3)), (true, true));
    }

    /// Bodies the full check refuses, one way each: the skeleton must never accept them.
    #[test]
    fn a_body_the_full_check_refuses_is_never_accepted() {
        let refused = [
            // A record wrapped in an object the template writes (an unknown key).
            r#"{"patient_data": [{% for r in records %}{"wrap": {{ r }}}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
            // A template-made element with every required key and one ReqCheck refuses.
            r#"{"patient_data": [{{ records[0] }}, {"patient_number": 2, "first_name": "A", "last_name": "B", "dob": "2001-01-01", "hd_mpfile_updated_at": "2016-09-28T12:00:00-05:00", "extra": 1}]}"#,
            // One record too many.
            r#"{"patient_data": [{% for r in records %}{{ r }},{% endfor %}{{ records[0] }}]}"#,
            // The records elsewhere, a template-made element in the array.
            r#"{"patient_data": [{"patient_number": 1}], "x": [{% for r in records %}{{ r }}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
            // A marker the template spells itself in the array, the record it stands for
            // written elsewhere (today's marker, and the object that was the marker before).
            r#"{"patient_data": ["\u0001", {{ records[1] }}], "x": {{ records[0] }}}"#,
            r#"{"patient_data": [{"\u0001":0}, {{ records[1] }}], "x": {{ records[0] }}}"#,
            // Records written where a key goes, and after a backslash in a string.
            r#"{"patient_data": [{% for r in records %}{ {{ r }}: 1}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
            r#"{"patient_data": [{% for r in records %}{"notes": "\{{ r }}"}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
            // A string element the template writes in place of a record.
            r#"{"patient_data": [{{ records[0] }}, "x"]}"#,
            // A template-made element lacking a required key.
            r#"{"patient_data": [{{ records[0] }}, {"patient_number": 2}]}"#,
            // A record written where a key goes, outside the array, and a template-made
            // element in its place: the skeleton parses, the body does not.
            r#"{"patient_data": [{{ records[0] }}, {"patient_number": 2, "first_name": "A", "last_name": "B", "dob": "2001-01-01", "hd_mpfile_updated_at": "2016-09-28T12:00:00-05:00"}], "x": { {{ records[1] }}: 1}}"#,
            // The same with a string in its place: a string is never a record.
            r#"{"patient_data": [{{ records[0] }}, "x"], "y": { {{ records[1] }}: 1}}"#,
            // A template-made element with a key twice (readers disagree on which counts).
            r#"{"patient_data": [{{ records[0] }}, {"patient_number": 2, "first_name": "A", "last_name": "B", "dob": "2001-01-01", "hd_mpfile_updated_at": "2016-09-28T12:00:00-05:00", "dob": "2001-01-02"}]}"#,
            // The body key twice (readers disagree on which array counts).
            r#"{"patient_data": [{% for r in records %}{{ r }}{% if not loop.last %},{% endif %}{% endfor %}], "patient_data": [{}]}"#,
        ];
        for source in refused {
            let (skeleton_accepts, full_accepts) = verdicts(&unchecked(source), &fitting(2));
            assert!(!full_accepts, "the full check refuses {source}");
            assert!(!skeleton_accepts, "the skeleton accepted {source}");
        }
    }

    #[test]
    fn a_record_written_inside_a_string_is_left_to_the_full_check() {
        let t = unchecked(
            r#"{"patient_data": [{% for r in records %}{"notes": "{{ r }}"}{% if not loop.last %},{% endif %}{% endfor %}]}"#,
        );
        assert_eq!(verdicts(&t, &fitting(2)), (false, false));
    }
}
