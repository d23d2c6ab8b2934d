//! The real-world corpora and code lists under `data/`, compiled into the binary.
//!
//! `include_str!` makes `reqsync seed --kcmo` work from an installed binary with no repository
//! around; `data/README.md` gives provenance and licences (the KCMO licence travels with it).

use chrono::{NaiveDate, NaiveDateTime};

use super::model::{Dose, Patient};

/// KCMO patients (`data/kcmo/mpfile.csv`).
pub const KCMO_MPFILE_CSV: &str = include_str!("../../data/kcmo/mpfile.csv");
/// KCMO doses (`data/kcmo/imfile.csv`).
pub const KCMO_IMFILE_CSV: &str = include_str!("../../data/kcmo/imfile.csv");
/// The KCMO clinic's vaccine code table (`data/kcmo/vaccine_codes.csv`).
pub const KCMO_VACCINE_CODES_CSV: &str = include_str!("../../data/kcmo/vaccine_codes.csv");
/// The BSD-3-Clause licence of the KCMO data, which binary distributions must reproduce.
pub const KCMO_LICENSE: &str = include_str!("../../data/kcmo/LICENSE-ReqCheck.txt");
/// CDC CDSi test-case patients (`data/cdsi/mpfile.csv`).
pub const CDSI_MPFILE_CSV: &str = include_str!("../../data/cdsi/mpfile.csv");
/// CDC CDSi test-case doses (`data/cdsi/imfile.csv`).
pub const CDSI_IMFILE_CSV: &str = include_str!("../../data/cdsi/imfile.csv");
/// CDC CVX codes with their status (`data/cdc/cvx_codes.csv`).
pub const CVX_CODES_CSV: &str = include_str!("../../data/cdc/cvx_codes.csv");

/// A CSV file under `data/` did not parse. Names the file, line and column, never the value.
#[derive(Debug, thiserror::Error)]
#[error("embedded {file}, line {line}: {reason}")]
pub struct CorpusError {
    /// The file, relative to `data/`.
    pub file: &'static str,
    /// 1-based line (the header is line 1); 0 when the header itself is at fault.
    pub line: u64,
    /// What is wrong (column name and expected form).
    pub reason: String,
}

/// A real-world test corpus in the clinic source schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Corpus {
    /// Kansas City, Missouri Health Department test data: 21 patients, 177 doses.
    Kcmo,
    /// CDC CDSi healthy childhood and adult test cases v4.28: 928 patients, 2,142 doses.
    Cdsi,
}

impl Corpus {
    /// Short lower-case name (`kcmo`, `cdsi`).
    pub fn name(self) -> &'static str {
        match self {
            Corpus::Kcmo => "kcmo",
            Corpus::Cdsi => "cdsi",
        }
    }

    fn files(self) -> [(&'static str, &'static str); 2] {
        match self {
            Corpus::Kcmo => [
                ("kcmo/mpfile.csv", KCMO_MPFILE_CSV),
                ("kcmo/imfile.csv", KCMO_IMFILE_CSV),
            ],
            Corpus::Cdsi => [
                ("cdsi/mpfile.csv", CDSI_MPFILE_CSV),
                ("cdsi/imfile.csv", CDSI_IMFILE_CSV),
            ],
        }
    }

    /// The corpus's patients, in file order.
    pub fn patients(self) -> Result<Vec<Patient>, CorpusError> {
        let [(file, csv), _] = self.files();
        parse_rows(file, csv, |r| {
            Ok(Patient {
                patno: r.int("patno")?,
                lname: r.required("lname")?.to_owned(),
                fname: r.required("fname")?.to_owned(),
                mname: r.text("mname"),
                birth_date: r.date("birth_date")?,
                sex: r.text("sex"),
                addr1: r.text("addr1"),
                addr2: r.text("addr2"),
                city: r.text("city"),
                state: r.text("state"),
                zip: r.text("zip"),
                home_phone: r.text("home_phone"),
                cell_phone: r.text("cell_phone"),
                email: r.text("email"),
                race: r.text("race"),
                ethnicity: r.text("ethnicity"),
                family_no: r.opt_int("family_no")?,
                notes: r.text("notes"),
                updated_at: r.datetime("updated_at")?,
            })
        })
    }

    /// The corpus's doses, in file order.
    pub fn doses(self) -> Result<Vec<Dose>, CorpusError> {
        let [_, (file, csv)] = self.files();
        parse_rows(file, csv, |r| {
            Ok(Dose {
                im_id: r.int("im_id")?,
                patno: r.int("patno")?,
                vac_code: r.text("vac_code"),
                vac_desc: r.text("vac_desc"),
                cvx: r.int("cvx")?,
                mvx: r.text("mvx"),
                lot_no: r.text("lot_no"),
                exp_date: r.opt_date("exp_date")?,
                admin_date: r.date("admin_date")?,
                history: r.required("history")?.to_owned(),
                provider: r.text("provider"),
                dosage: r.text("dosage"),
                site: r.text("site"),
                given_by: r.text("given_by"),
                vfc_code: r.text("vfc_code"),
                vfc_desc: r.text("vfc_desc"),
                encounter_id: r.text("encounter_id"),
                comments: r.text("comments"),
                updated_at: r.datetime("updated_at")?,
            })
        })
    }
}

/// One row of `data/cdc/cvx_codes.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvxCode {
    /// The CVX code.
    pub cvx: i64,
    /// CDC short description.
    pub short_description: String,
    /// `Active`, `Inactive`, `Non-US`, `Never Active` or `Pending`.
    pub status: String,
}

/// The CDC CVX code list, in file order (ascending code).
pub fn cvx_codes() -> Result<Vec<CvxCode>, CorpusError> {
    parse_rows("cdc/cvx_codes.csv", CVX_CODES_CSV, |r| {
        Ok(CvxCode {
            cvx: r.int("cvx")?,
            short_description: r.required("short_description")?.to_owned(),
            status: r.required("status")?.to_owned(),
        })
    })
}

/// One row of the KCMO clinic's vaccine code table (`data/kcmo/vaccine_codes.csv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicVaccineCode {
    /// The clinic's short code (`DTHI`, `MMR9`…).
    pub vac_code: String,
    /// The clinic's description.
    pub vac_desc: String,
    /// Manufacturer (MVX), when the row names one.
    pub mvx: Option<String>,
    /// An example lot number, when the row has one.
    pub lot_no: Option<String>,
    /// The CDC CVX code.
    pub cvx: i64,
}

/// The KCMO clinic's vaccine code table, in file order.
pub fn clinic_vaccine_codes() -> Result<Vec<ClinicVaccineCode>, CorpusError> {
    parse_rows("kcmo/vaccine_codes.csv", KCMO_VACCINE_CODES_CSV, |r| {
        Ok(ClinicVaccineCode {
            vac_code: r.required("vac_code")?.to_owned(),
            vac_desc: r.required("vac_desc")?.to_owned(),
            mvx: r.text("mvx"),
            lot_no: r.text("lot_no"),
            cvx: r.int("cvx")?,
        })
    })
}

/// A CSV record seen through its header: columns the file lacks, and empty cells, are absent.
struct Row<'a> {
    headers: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
}

/// Why a cell did not convert; the caller adds the file and line.
type CellResult<T> = Result<T, String>;

impl Row<'_> {
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.headers.iter().position(|h| h == column)?;
        self.record.get(i).filter(|v| !v.is_empty())
    }

    fn required(&self, column: &str) -> CellResult<&str> {
        self.get(column)
            .ok_or_else(|| format!("column {column} is missing or empty"))
    }

    fn text(&self, column: &str) -> Option<String> {
        self.get(column).map(str::to_owned)
    }

    fn int(&self, column: &str) -> CellResult<i64> {
        parse_int(column, self.required(column)?)
    }

    fn opt_int(&self, column: &str) -> CellResult<Option<i64>> {
        self.get(column).map(|v| parse_int(column, v)).transpose()
    }

    fn date(&self, column: &str) -> CellResult<NaiveDate> {
        parse_date(column, self.required(column)?)
    }

    fn opt_date(&self, column: &str) -> CellResult<Option<NaiveDate>> {
        self.get(column).map(|v| parse_date(column, v)).transpose()
    }

    fn datetime(&self, column: &str) -> CellResult<NaiveDateTime> {
        let v = self.required(column)?;
        // The CSV files use ISO 8601 with `T`; accept SQLite's space spelling too.
        NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f"))
            .map_err(|_| format!("column {column} is not a YYYY-MM-DDTHH:MM:SS timestamp"))
    }
}

fn parse_int(column: &str, v: &str) -> CellResult<i64> {
    v.parse()
        .map_err(|_| format!("column {column} is not an integer"))
}

fn parse_date(column: &str, v: &str) -> CellResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| format!("column {column} is not a YYYY-MM-DD date"))
}

fn parse_rows<T>(
    file: &'static str,
    csv_text: &str,
    mut convert: impl FnMut(&Row<'_>) -> CellResult<T>,
) -> Result<Vec<T>, CorpusError> {
    let fail = |line: u64, reason: String| CorpusError { file, line, reason };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| fail(0, format!("unreadable header: {}", csv_error_kind(&e))))?
        .clone();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(fail(line, csv_error_kind(&e))),
        }
        let row = Row {
            headers: &headers,
            record: &record,
        };
        rows.push(convert(&row).map_err(|reason| fail(line, reason))?);
    }
    Ok(rows)
}

/// A csv error without the record contents some of its variants carry.
fn csv_error_kind(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_owned(),
        csv::ErrorKind::UnequalLengths { .. } => "wrong number of fields".to_owned(),
        _ => "malformed CSV".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kcmo_parses_with_its_published_counts() -> Result<(), CorpusError> {
        let patients = Corpus::Kcmo.patients()?;
        let doses = Corpus::Kcmo.doses()?;
        assert_eq!((patients.len(), doses.len()), (21, 177));
        let first = &patients[0];
        assert_eq!(first.patno, 101);
        assert_eq!(
            first.birth_date,
            NaiveDate::from_ymd_opt(2015, 10, 15).unwrap_or_default()
        );
        assert_eq!(first.sex, None, "empty cells are absent, not empty strings");
        assert_eq!(first.mname, None, "columns the CSV lacks are absent");
        assert_eq!(doses.iter().filter(|d| d.patno == 101).count(), 4);
        assert_eq!(doses[0].cvx, 110);
        assert_eq!(doses[0].vac_code.as_deref(), Some("DTHI"));
        assert_eq!(doses[1].history, "Y");
        Ok(())
    }

    #[test]
    fn cdsi_parses_with_its_published_counts() -> Result<(), CorpusError> {
        let patients = Corpus::Cdsi.patients()?;
        let doses = Corpus::Cdsi.doses()?;
        assert_eq!((patients.len(), doses.len()), (928, 2142));
        assert_eq!(patients.first().map(|p| p.patno), Some(500_001));
        assert_eq!(patients.last().map(|p| p.patno), Some(500_928));
        assert_eq!(doses.iter().filter(|d| d.mvx.is_none()).count(), 539);
        Ok(())
    }

    #[test]
    fn code_lists_parse_and_every_corpus_cvx_is_listed() -> Result<(), CorpusError> {
        let known: Vec<i64> = cvx_codes()?.iter().map(|c| c.cvx).collect();
        assert_eq!(known.len(), 196);
        assert_eq!(clinic_vaccine_codes()?.len(), 150);
        for corpus in [Corpus::Kcmo, Corpus::Cdsi] {
            for dose in corpus.doses()? {
                assert!(
                    known.contains(&dose.cvx),
                    "{} cvx {}",
                    corpus.name(),
                    dose.cvx
                );
            }
        }
        Ok(())
    }

    #[test]
    fn a_bad_cell_names_file_line_and_column_but_not_the_value() {
        let csv = "patno,lname,fname,birth_date,updated_at\n1,A,B,31/12/2020,2020-01-01T00:00:00\n";
        let err = parse_rows("test.csv", csv, |r| r.date("birth_date"));
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("test.csv, line 2"), "{msg}");
        assert!(msg.contains("birth_date"), "{msg}");
        assert!(!msg.contains("31/12/2020"), "{msg}");
    }
}
