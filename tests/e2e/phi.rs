//! The protected health information (PHI) of a world's clinic database, and the check that none
//! of it reached a piece of output: names, dates of birth, addresses, phone numbers, e-mail
//! addresses and lot numbers, as stored in the source.

use std::collections::BTreeSet;

use crate::support::World;

/// Every PHI value of a clinic database (SQLite worlds).
pub struct Phi {
    values: BTreeSet<String>,
}

/// Dates that legitimately appear in output (window starts, as-of dates) and may equal a date
/// of birth by coincidence.
fn ordinary_dates() -> BTreeSet<String> {
    let today = chrono::Utc::now().date_naive();
    let mut dates: BTreeSet<String> = (-3..=3)
        .map(|d| (today + chrono::Duration::days(d)).to_string())
        .collect();
    dates.insert("1900-01-01".into());
    dates
}

impl Phi {
    pub fn of(world: &World) -> Phi {
        let conn = world.clinic();
        let mut values = BTreeSet::new();
        let mut collect = |sql: &str| {
            let mut stmt = conn.prepare(sql).expect("PHI query");
            let n = stmt.column_count();
            let mut rows = stmt.query([]).expect("PHI rows");
            while let Some(row) = rows.next().expect("PHI row") {
                for i in 0..n {
                    // Bytes, so a row made invalid UTF-8 on purpose is still read.
                    let bytes: Option<Vec<u8>> = match row.get_ref(i).expect("value") {
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            Some(t.to_vec())
                        }
                        _ => None,
                    };
                    if let Some(b) = bytes {
                        values.insert(String::from_utf8_lossy(&b).trim().to_string());
                    }
                }
            }
        };
        collect(
            "SELECT lname, fname, birth_date, addr1, addr2, home_phone, cell_phone, email
             FROM mpfile",
        );
        collect("SELECT lot_no FROM imfile");
        let ordinary = ordinary_dates();
        // Three characters or fewer match too much by chance ("Lee" in "Leeds"): the names
        // that short are still covered by longer values of the same rows.
        values.retain(|v| v.chars().count() >= 4 && !ordinary.contains(v));
        assert!(values.len() > 10, "the world holds PHI to look for");
        Phi { values }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Panics naming the value and the line if any PHI value occurs in `text` as a whole token
    /// (not inside a longer run of letters and digits, such as a SHA-256).
    pub fn assert_absent(&self, what: &str, text: &str) {
        if let Some((value, line)) = self.find(text) {
            panic!("PHI ({value:?}) reached {what}:\n{line}");
        }
    }

    fn find<'a>(&'a self, text: &'a str) -> Option<(&'a str, &'a str)> {
        for line in text.lines() {
            for value in &self.values {
                let mut from = 0;
                while let Some(at) = line[from..].find(value.as_str()) {
                    let start = from + at;
                    let end = start + value.len();
                    let before = line[..start].chars().next_back();
                    let after = line[end..].chars().next();
                    let joined = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
                    // A value starting with a digit after `.` or `:` is the fraction of a
                    // timestamp (`07:11:35.743974Z`), not a lot number.
                    let fraction = value.starts_with(|c: char| c.is_ascii_digit())
                        && matches!(before, Some('.' | ':'));
                    if !joined(before) && !joined(after) && !fraction {
                        return Some((value, line));
                    }
                    from = start + value.chars().next().map_or(1, char::len_utf8);
                }
            }
        }
        None
    }
}

#[test]
fn finds_a_value_as_a_token_but_not_inside_a_hash() {
    let phi = Phi {
        values: ["Quixbottom".to_string(), "12345".to_string()].into(),
    };
    assert!(phi.find("rejected row 7: lname=Quixbottom").is_some());
    assert!(phi.find("body_sha256=ab12345cd").is_none());
    assert!(phi.find("lot \"12345\" expired").is_some());
    assert!(phi.find("2026-11-27T07:11:35.12345 TRACE").is_none());
    assert_eq!(phi.len(), 2);
}
