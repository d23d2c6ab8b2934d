//! The budget of work one render may do.
//!
//! A template is a program: `{% for i in range(100000) %}{% for j in range(100000) %}` runs
//! for hours, and rendering happens on the run's own thread, so without a bound one bad
//! template hangs the run (and the daemon's schedule) until someone kills it. minijinja counts
//! work as "fuel" (its `fuel` feature): about one unit per instruction executed, one per 64
//! bytes written or created, more for serialising and sorting. A render that uses up the fuel
//! it was given fails with `OutOfFuel`, which becomes [`super::RenderError::Budget`].
//!
//! `batch_size` has no upper bound (the config refuses only 0) and a patient's doses are never
//! split, so a body can hold any number of records: the budget grows with the records rather
//! than being sized for a largest batch. It is linear in their number and in the bytes of
//! their text, so any template that does a bounded amount of work per record fits, at every
//! batch size, and one whose work grows faster (loops over the records nested inside a loop
//! over them) or without end is stopped.
//!
//! How the figures were chosen: `the_budget_leaves_a_wide_margin_over_real_templates` below
//! renders realistic records (a patient with every field, about 430 bytes of JSON; a dose,
//! about 130) at 1, 500 (the default `batch_size`), 2,000 and 10,000 records a body, reads
//! what each render used from minijinja's own count (`State::fuel_levels`), and prints it
//! (`cargo test -p reqsync --lib render::budget -- --nocapture`). minijinja charges writing a
//! list as serialising it, 17/64 fuel a byte, even where the host writes the records' text
//! itself (`{{ records }}`, the default templates), so what a template uses is mostly that:
//! measured, 107 fuel a patient and 30 a dose for the default templates, 117 a patient for
//! the loop they replaced (`{% for record in records %}{{ record }}…`), 136 through `tojson`,
//! 88 for a template spelling out every field — the same per record at every batch size. The
//! budget gives each record 2,000 fuel plus 2 per byte of its text, and every render 100,000
//! for the template's own logic: 26 to 28 times what the default patients template uses, 73
//! to 80 times for doses, 21 to 34 times for the others, at every batch size measured (the
//! test asserts 25 for the default templates, 20 for the others). For a runaway template at
//! 500 patients that is 1.5 million fuel: that many instructions, or about 100 MB of data.

use crate::transform::Record;

/// Fuel for the template's own text and logic, whatever the records.
const BASE: u64 = 100_000;
/// Fuel for each record: far above the instructions a template spends on one (a few dozen).
const PER_RECORD: u64 = 2_000;
/// Fuel for each byte of the records' JSON text: writing it costs 17/64 of a fuel a byte.
const PER_RECORD_BYTE: u64 = 2;

/// The fuel a render of `records` may use.
pub(super) fn fuel_for(records: &[Record]) -> u64 {
    let bytes: u64 = records.iter().map(|r| r.json().len() as u64).sum();
    BASE.saturating_add(PER_RECORD.saturating_mul(records.len() as u64))
        .saturating_add(PER_RECORD_BYTE.saturating_mul(bytes))
}

/// Whether `e` (or an error it wraps, e.g. from a macro) is minijinja running out of fuel.
pub(super) fn ran_out(e: &minijinja::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = current {
        if error
            .downcast_ref::<minijinja::Error>()
            .is_some_and(|e| e.kind() == minijinja::ErrorKind::OutOfFuel)
        {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use minijinja::context;

    use super::*;
    use crate::render::{BodyTemplate, NAME, RenderError};
    use crate::reqcheck::Target;
    use crate::reqcheck::targets::{PATIENT_DATA, VACCINE_DOSE_DATA};

    /// A patient with every field ReqCheck accepts filled in, as the patients module writes it.
    fn patient(n: usize) -> String {
        format!(
            r#"{{"patient_number":{n},"first_name":"Annabelle","last_name":"O'Donnell-Smythe","dob":"1987-04-12","hd_mpfile_updated_at":"2024-09-28T12:00:00-05:00","email":"annabelle@example.org","address":"1234 Long Street Name Ave","address2":"Apt 5B","city":"Kansas City","state":"MO","zip_code":"64105","cell_phone":"8165550123","home_phone":"8165550199","race":"2106-3","ethnicity":"2186-5","gender":"F","family_number":"{n}","notes":"none"}}"#
        )
    }

    fn dose(n: usize) -> String {
        format!(
            r#"{{"patient_number":{n},"cvx_code":18,"date_administered":"2016-07-27","hd_imfile_updated_at":"2025-02-22T18:42:39-06:00"}}"#
        )
    }

    fn records(n: usize, target: &'static Target) -> Vec<Record> {
        let text = if target.name == PATIENT_DATA.name {
            patient
        } else {
            dose
        };
        (1..=n)
            .map(|i| Record::from_host_json(&text(i), Some(target)))
            .collect()
    }

    /// The fuel one render of `source` uses for `records`, from minijinja's own count.
    fn consumed(source: &str, target: &'static Target, records: &[Record]) -> u64 {
        let t = BodyTemplate::from_source(Path::new("t.json.j2"), source.to_owned(), target)
            .expect("the template loads");
        let mut env = t.env.clone();
        env.set_fuel(Some(u64::MAX / 128));
        let values: Vec<minijinja::Value> = records.iter().map(Record::to_template_value).collect();
        let rendered = env
            .get_template(NAME)
            .expect("template")
            .render_captured(context! { records => values, target => target.name })
            .expect("renders");
        rendered.state().fuel_levels().expect("fuel is tracked").0
    }

    const PATIENTS: &str = include_str!("../../../templates/patient_data.json.j2");
    const DOSES: &str = include_str!("../../../templates/vaccine_dose_data.json.j2");
    const LOOP: &str = r#"{"patient_data": [{% for record in records %}{{ record }}{% if not loop.last %},{% endif %}{% endfor %}]}"#;
    const TOJSON: &str = r#"{"patient_data": [{% for record in records %}{{ record | tojson }}{% if not loop.last %},{% endif %}{% endfor %}]}"#;
    /// Every field spelt out, the way a hand-written mapping reads.
    const SPELT_OUT: &str = r#"{"patient_data": [{% for r in records %}{"patient_number": {{ r.patient_number }}, "first_name": {{ r.first_name }}, "last_name": {{ r.last_name }}, "dob": {{ r.dob }}, "hd_mpfile_updated_at": {{ r.hd_mpfile_updated_at }}, "email": {{ r.email }}, "address": {{ r.address }}, "address2": {{ r.address2 }}, "city": {{ r.city }}, "state": {{ r.state }}, "zip_code": {{ r.zip_code }}, "cell_phone": {{ r.cell_phone }}, "home_phone": {{ r.home_phone }}, "race": {{ r.race }}, "ethnicity": {{ r.ethnicity }}, "gender": {{ r.gender }}, "family_number": {{ r.family_number }}, "notes": {{ r.notes }}}{% if not loop.last %},{% endif %}{% endfor %}]}"#;

    #[test]
    fn the_budget_leaves_a_wide_margin_over_real_templates() {
        let cases: [(&str, &str, &'static Target, u64); 5] = [
            ("default patients", PATIENTS, &PATIENT_DATA, 25),
            ("default doses", DOSES, &VACCINE_DOSE_DATA, 25),
            ("loop over records", LOOP, &PATIENT_DATA, 20),
            ("records through tojson", TOJSON, &PATIENT_DATA, 20),
            ("every field spelt out", SPELT_OUT, &PATIENT_DATA, 20),
        ];
        for (what, source, target, margin) in cases {
            for n in [1, 500, 2_000, 10_000] {
                let records = records(n, target);
                let used = consumed(source, target, &records);
                let budget = fuel_for(&records);
                println!(
                    "{what}, {n} records: {used} fuel ({} a record), budget {budget} ({}x)",
                    used / n as u64,
                    budget / used.max(1)
                );
                assert!(
                    budget >= margin * used,
                    "{what}, {n} records: {used} fuel of {budget}"
                );
            }
        }
    }

    #[test]
    fn a_template_that_never_ends_is_stopped_when_it_is_loaded() {
        let source = r#"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{"patient_data": {{ records }}}"#;
        let e = BodyTemplate::from_source(Path::new("t.json.j2"), source.into(), &PATIENT_DATA)
            .expect_err("stopped");
        assert!(matches!(e, RenderError::Budget { .. }), "{e}");
        let message = e.to_string();
        for part in [
            "t.json.j2",
            "was stopped",
            "sample records",
            "{{ records }}",
        ] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[test]
    fn work_growing_with_the_square_of_the_records_is_stopped_at_run_time() {
        // Fine for the two sample records, far over budget for a large body.
        let source = r#"{% for a in records %}{% for b in records %}{% set x = b %}{% endfor %}{% endfor %}{"patient_data": {{ records }}}"#;
        let t = BodyTemplate::from_source(Path::new("t.json.j2"), source.into(), &PATIENT_DATA)
            .expect("loads");
        assert!(t.render(&records(20, &PATIENT_DATA)).is_ok());
        let started = std::time::Instant::now();
        let e = t
            .render(&records(1_500, &PATIENT_DATA))
            .expect_err("stopped");
        println!("stopped after {:?}", started.elapsed());
        assert!(matches!(e, RenderError::Budget { .. }), "{e}");
        assert!(e.to_string().contains("1500 record(s)"), "{e}");
        assert!(!e.to_string().contains("sample"), "{e}");
    }

    #[test]
    fn running_out_is_found_inside_a_macro_too() {
        let source = r#"{% macro spin() %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endmacro %}{{ spin() }}{"patient_data": {{ records }}}"#;
        let e = BodyTemplate::from_source(Path::new("t.json.j2"), source.into(), &PATIENT_DATA)
            .expect_err("stopped");
        assert!(matches!(e, RenderError::Budget { .. }), "{e}");
    }
}
