//! The quarantine: rows a transform rejected, by job and key, with their finding codes and the
//! module that rejected them — never the row's values. An entry stays open until the row passes
//! in a later run (fixed at the source, or a module that now accepts it), or is replayed.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::runs::stamp;
use super::{Ledger, LedgerError, RunId};

/// One quarantined row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineEntry {
    pub job: String,
    /// The module's key column (`patno`, `im_id`).
    pub key: String,
    /// Dose jobs: the patient (group column) whose doses are held back with the row.
    pub group: Option<String>,
    /// `field:code` tags.
    pub findings: Vec<String>,
    pub module_sha256: String,
    pub first_seen: String,
    pub last_seen: String,
    pub first_run: RunId,
    pub last_run: RunId,
    pub times_seen: i64,
    pub resolved_at: Option<String>,
    pub resolved_run: Option<RunId>,
}

impl QuarantineEntry {
    /// The distinct field names of the findings.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self
            .findings
            .iter()
            .map(|t| t.split_once(':').map_or(t.as_str(), |(f, _)| f))
            .collect();
        fields.dedup();
        fields
    }
    /// The distinct finding codes.
    pub fn codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = self
            .findings
            .iter()
            .map(|t| t.split_once(':').map_or(t.as_str(), |(_, c)| c))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }
}

/// A rejected row as a run reports it.
#[derive(Debug, Clone)]
pub struct Rejection<'a> {
    pub key: &'a str,
    pub group: Option<&'a str>,
    pub findings: Vec<&'a str>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter {
    pub job: Option<String>,
    /// Only these keys (empty: all).
    pub keys: Vec<String>,
    /// Also entries whose row has since passed.
    pub include_resolved: bool,
}

impl Ledger {
    /// Adds or refreshes the entries of a job's rejected rows. A row rejected again keeps its
    /// first sighting and is re-opened if it had been resolved.
    pub fn quarantine_rows<'r>(
        &self,
        run: RunId,
        job: &str,
        module_sha256: &str,
        rows: impl IntoIterator<Item = Rejection<'r>>,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut rows = rows.into_iter().peekable();
        if rows.peek().is_none() {
            return Ok(());
        }
        let at = stamp(at);
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare(
                    "INSERT INTO quarantine (job, row_key, group_key, findings, module_sha256,
                         first_seen, last_seen, first_run, last_run, times_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7, 1)
                     ON CONFLICT (job, row_key) DO UPDATE SET
                         group_key = excluded.group_key, findings = excluded.findings,
                         module_sha256 = excluded.module_sha256, last_seen = excluded.last_seen,
                         last_run = excluded.last_run, times_seen = times_seen + 1,
                         resolved_at = NULL, resolved_run = NULL",
                )?;
                for r in rows {
                    let findings =
                        serde_json::to_string(&r.findings).unwrap_or_else(|_| "[]".into());
                    stmt.execute(params![
                        job,
                        r.key,
                        r.group,
                        findings,
                        module_sha256,
                        at,
                        run
                    ])?;
                }
            }
            tx.commit()
        })
    }

    /// Keys of the job's open entries.
    pub fn open_quarantine_keys(&self, job: &str) -> Result<HashSet<String>, LedgerError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT row_key FROM quarantine WHERE job = ?1 AND resolved_at IS NULL")?;
            stmt.query_map([job], |r| r.get(0))?.collect()
        })
    }

    /// Keys of open entries without a group: rows of patient jobs (dose rows always belong
    /// to a patient's group).
    pub(crate) fn open_ungrouped_quarantine_keys(&self) -> Result<HashSet<String>, LedgerError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT row_key FROM quarantine WHERE group_key IS NULL AND resolved_at IS NULL",
            )?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
    }

    /// Marks entries resolved: their rows passed the transform in `run`.
    pub(crate) fn resolve_quarantined(
        &self,
        run: RunId,
        job: &str,
        keys: &HashSet<String>,
        at: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let at = stamp(at);
        self.with(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare(
                    "UPDATE quarantine SET resolved_at = ?3, resolved_run = ?4
                     WHERE job = ?1 AND row_key = ?2 AND resolved_at IS NULL",
                )?;
                for key in keys {
                    n += stmt.execute(params![job, key, at, run])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    /// Entries matching `filter`, by job and first sighting.
    pub fn quarantine(
        &self,
        filter: &QuarantineFilter,
    ) -> Result<Vec<QuarantineEntry>, LedgerError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT job, row_key, group_key, findings, module_sha256, first_seen, last_seen,
                        first_run, last_run, times_seen, resolved_at, resolved_run
                 FROM quarantine
                 WHERE (?1 IS NULL OR job = ?1) AND (?2 OR resolved_at IS NULL)
                 ORDER BY job, first_seen, row_key",
            )?;
            let rows = stmt.query_map(params![filter.job, filter.include_resolved], |r| {
                let findings: String = r.get(3)?;
                Ok(QuarantineEntry {
                    job: r.get(0)?,
                    key: r.get(1)?,
                    group: r.get(2)?,
                    findings: serde_json::from_str(&findings).unwrap_or_default(),
                    module_sha256: r.get(4)?,
                    first_seen: r.get(5)?,
                    last_seen: r.get(6)?,
                    first_run: r.get(7)?,
                    last_run: r.get(8)?,
                    times_seen: r.get(9)?,
                    resolved_at: r.get(10)?,
                    resolved_run: r.get(11)?,
                })
            })?;
            let mut out = Vec::new();
            for row in rows {
                let entry = row?;
                if filter.keys.is_empty() || filter.keys.contains(&entry.key) {
                    out.push(entry);
                }
            }
            Ok(out)
        })
    }
}
