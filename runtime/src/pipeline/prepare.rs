//! Loading and checking one job before anything runs.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::RunError;
use crate::config::JobConfig;
use crate::input_file::{self, InputFileError};
use crate::render::BodyTemplate;
use crate::reqcheck::targets::{self, Target};
use crate::transform::{ModuleRegistry, ModuleSlot, TransformEngine, TransformInstance};

/// A job with its module instantiated and checked, its query and template read.
#[derive(Debug)]
pub struct PreparedJob {
    pub config: JobConfig,
    pub instance: TransformInstance,
    /// The hot-swap slot the module came from, with the version instantiated.
    pub slot: Option<(Arc<ModuleSlot>, u64)>,
    pub target: &'static Target,
    pub template: BodyTemplate,
    pub query_sql: String,
    pub query_sha256: String,
    pub endpoint: String,
}

pub async fn prepare(
    job: &JobConfig,
    engine: &TransformEngine,
    modules: Option<&ModuleRegistry>,
) -> Result<PreparedJob, RunError> {
    let name = job.name.clone();
    let config_err = |reason: String| RunError::Config {
        job: name.clone(),
        reason,
    };
    let query_sql = input_file::read_to_string(&job.query, input_file::QUERY).map_err(|e| {
        if let InputFileError::OutOfFiles { .. } = e {
            RunError::OutOfFiles {
                job: name.clone(),
                error: e,
            }
        } else {
            config_err(format!(
                "cannot read query file {}: {}",
                job.query.display(),
                e.reason()
            ))
        }
    })?;
    let query_sha256 = hex::encode(Sha256::digest(query_sql.as_bytes()));

    // In a service the registry holds the active version (loaded once, then swapped);
    // otherwise the file is loaded now.
    let slot = match modules {
        Some(registry) => {
            Some(
                registry
                    .slot(&job.transform)
                    .map_err(|error| RunError::Transform {
                        job: name.clone(),
                        error,
                    })?,
            )
        }
        None => None,
    };
    // Compiling takes 100–250 ms without a cache hit: keep it off the async threads.
    let (engine2, path, slot2) = (engine.clone(), job.transform.clone(), slot.clone());
    let limits = job.sandbox.clone();
    let (instance, slot) = tokio::task::spawn_blocking(move || {
        let (module, slot) = match slot2 {
            Some(slot) => {
                let (version, module) = slot.current();
                ((*module).clone(), Some((slot, version)))
            }
            None => (engine2.load(&path)?, None),
        };
        TransformInstance::with_limits(&engine2, &module, limits).map(|i| (i, slot))
    })
    .await
    .map_err(|e| config_err(format!("module loader failed: {e}")))?
    .map_err(|error| RunError::Transform {
        job: name.clone(),
        error,
    })?;

    let info = instance.info();
    let target = targets::by_name(&info.target).ok_or_else(|| {
        config_err(format!(
            "transform module `{}` emits `{}` records, which ReqCheck does not import (patient_data, vaccine_dose_data)",
            info.name, info.target
        ))
    })?;
    let undeclared: Vec<&str> = info
        .output_fields
        .iter()
        .map(|f| f.name.as_str())
        .filter(|f| !target.fields.contains(f))
        .collect();
    if !undeclared.is_empty() {
        return Err(config_err(format!(
            "transform module `{}` may emit {undeclared:?}, which ReqCheck rejects on `{}` records",
            info.name, target.name
        )));
    }
    let not_guaranteed: Vec<&str> = target
        .required
        .iter()
        .copied()
        .filter(|r| {
            !info
                .output_fields
                .iter()
                .any(|f| f.name == *r && f.required)
        })
        .collect();
    if !not_guaranteed.is_empty() {
        return Err(config_err(format!(
            "transform module `{}` does not declare ReqCheck's required field(s) {not_guaranteed:?} as always emitted",
            info.name
        )));
    }
    let endpoint = job.endpoint_for(target);
    if endpoint != target.endpoint {
        return Err(config_err(format!(
            "endpoint `{endpoint}` does not import `{}` records (module `{}`); use {}",
            target.name, info.name, target.endpoint
        )));
    }
    let template =
        BodyTemplate::load(&job.template, target).map_err(|error| RunError::Template {
            job: name.clone(),
            error,
        })?;
    Ok(PreparedJob {
        config: job.clone(),
        instance,
        slot,
        target,
        template,
        query_sql,
        query_sha256,
        endpoint,
    })
}
