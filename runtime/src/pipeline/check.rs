//! `reqsync check`: everything a run would load and ask of the source, without a run.
//!
//! Each job is prepared as a run prepares it (module, template, query file), then its query is
//! started and dropped as soon as the source has said which columns it returns — no row is
//! transformed or sent — and those columns are matched against what the module reads.

use serde::Serialize;

use chrono::{NaiveDate, NaiveDateTime};

use std::path::Path;

use super::{Pipeline, RunError, prepare};
use crate::config::JobConfig;
use crate::source::{ColumnInfo, Query};
use crate::transform::{BatchPlan, ModuleInfo, TransformError};

/// What `check` found for one job.
#[derive(Debug, Clone, Serialize)]
pub struct JobCheck {
    pub job: String,
    pub module: String,
    pub module_version: String,
    /// The columns the query returns.
    pub query_columns: Vec<String>,
    /// Columns the module reads (required ones) that the query does not return.
    pub missing_columns: Vec<String>,
    /// Optional module columns the query does not return (they will be NULL).
    pub absent_optional_columns: Vec<String>,
}

impl Pipeline {
    /// Checks every job (or the one named); the first problem that stops a job is an error, as
    /// it would be in a run.
    pub async fn check(&self, only: Option<&str>) -> Result<Vec<JobCheck>, RunError> {
        let mut out = Vec::new();
        for job in self
            .config
            .jobs
            .iter()
            .filter(|j| only.is_none_or(|n| n == j.name))
        {
            let prepared = prepare::prepare(job, &self.engine, self.modules.as_deref()).await?;
            let columns = self.query_columns(&job.query, &prepared.query_sql).await?;
            let info = prepared.instance.info();
            let has = |name: &str| columns.iter().any(|c| c.name.eq_ignore_ascii_case(name));
            // The matching a run does, so `check` and `run` cannot disagree.
            let missing_columns = match BatchPlan::new(info, &columns, self.config.clinic_tz) {
                Ok(_) => Vec::new(),
                Err(TransformError::ColumnsMissing { missing, .. }) => missing,
                Err(error) => {
                    return Err(RunError::Transform {
                        job: job.name.clone(),
                        error,
                    });
                }
            };
            let absent_optional_columns = info
                .input_columns
                .iter()
                .filter(|c| !c.required && !has(&c.name))
                .map(|c| c.name.clone())
                .collect();
            let check = JobCheck {
                job: job.name.clone(),
                module: info.name.clone(),
                module_version: info.version.clone(),
                query_columns: columns.iter().map(|c| c.name.clone()).collect(),
                missing_columns,
                absent_optional_columns,
            };
            out.push(check);
        }
        Ok(out)
    }

    /// The columns a job's query returns, asked of the source with a window start after every
    /// row: the server describes the result without reading or sorting any data, and no row
    /// leaves it.
    pub(super) async fn query_columns(
        &self,
        query_file: &Path,
        sql: &str,
    ) -> Result<Vec<ColumnInfo>, RunError> {
        let query = Query {
            name: query_file.display().to_string(),
            sql: sql.to_string(),
        };
        let stream = self.source.stream(&query, probe_start(), 1).await?;
        Ok(stream.columns.clone())
    }

    /// Fails, as the run would later, if a job's query lacks a column its module needs: run
    /// before the first request, so a dose query that does not fit cannot stop a run after
    /// its patients were sent.
    pub(super) async fn check_query_columns(
        &self,
        job: &JobConfig,
        query_sql: &str,
        info: &ModuleInfo,
        grouped: bool,
    ) -> Result<(), RunError> {
        let columns = self.query_columns(&job.query, query_sql).await?;
        let transform_err = |error| RunError::Transform {
            job: job.name.clone(),
            error,
        };
        let plan = BatchPlan::new(info, &columns, self.config.clinic_tz).map_err(transform_err)?;
        if grouped {
            let column = job.group_column();
            plan.with_group_column(column, &columns)
                .map_err(transform_err)?;
        }
        Ok(())
    }
}

/// A window start later than any clinic row, and inside every engine's date range (SQL
/// Server's `smalldatetime` ends in June 2079).
fn probe_start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2079, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(NaiveDateTime::MAX)
}
