//! `reqsync check`: everything a run would load and ask of the source, without a run.
//!
//! Each job is prepared as a run prepares it (module, template, query file), then its query is
//! started and dropped as soon as the source has said which columns it returns — no row is
//! transformed or sent — and those columns are matched against what the module reads.

use serde::Serialize;

use super::{Pipeline, RunError, prepare};
use crate::reqcheck::window::full_extract_start;
use crate::source::Query;
use crate::transform::{BatchPlan, TransformError};

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
            let query = Query {
                name: job.query.display().to_string(),
                sql: prepared.query_sql.clone(),
            };
            // The stream is dropped right after the columns are known: the reader stops, and no
            // row leaves the source process.
            let stream = self.source.stream(&query, full_extract_start(), 1).await?;
            let columns = stream.columns.clone();
            drop(stream);
            let info = prepared.instance.info();
            let has = |name: &str| columns.iter().any(|c| c.name.eq_ignore_ascii_case(name));
            // The matching a run does, so `check` and `run` cannot disagree.
            let missing_columns = match BatchPlan::new(info, &columns, self.config.clinic_tz) {
                Ok(_) => Vec::new(),
                Err(TransformError::ColumnsMissing { missing, .. }) => missing,
                Err(source) => {
                    return Err(RunError::Transform {
                        job: job.name.clone(),
                        source,
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
}
