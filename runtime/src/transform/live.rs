//! A job's transform for the length of a run, following hot swaps between batches.

use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::registry::ModuleSlot;
use super::{
    BatchPlan, ModuleInfo, RowOutcome, TransformEngine, TransformError, TransformInstance,
};
use crate::source::{ColumnInfo, RowBatch};

/// The instance a run uses, its batch plan, and — when the module is hot-swappable — the slot it
/// watches. A new version is picked up only at the start of a batch, so every row is processed
/// by exactly one version.
#[derive(Debug)]
pub struct LiveTransform {
    instance: TransformInstance,
    plan: BatchPlan,
    slot: Option<(Arc<ModuleSlot>, u64)>,
    columns: Vec<ColumnInfo>,
    group_column: Option<String>,
    clinic_tz: Tz,
    /// Hashes of every version that processed rows in this run, in order.
    used: Vec<String>,
}

impl LiveTransform {
    /// `slot` is `None` for a module that is not swapped during the run.
    pub fn new(
        instance: TransformInstance,
        slot: Option<(Arc<ModuleSlot>, u64)>,
        columns: &[ColumnInfo],
        group_column: Option<String>,
        clinic_tz: Tz,
    ) -> Result<Self, TransformError> {
        let plan = plan_for(instance.info(), columns, group_column.as_deref(), clinic_tz)?;
        if let Some((slot, _)) = &slot {
            slot.note_query_columns(columns);
        }
        let used = vec![instance.module().sha256.clone()];
        Ok(Self {
            instance,
            plan,
            slot,
            columns: columns.to_vec(),
            group_column,
            clinic_tz,
            used,
        })
    }

    pub fn info(&self) -> &ModuleInfo {
        self.instance.info()
    }

    /// Module hashes that processed rows, in order (more than one when a swap happened).
    pub fn versions_used(&self) -> &[String] {
        &self.used
    }

    /// Processes one batch with the version active when the batch starts.
    pub fn process(
        &mut self,
        engine: &TransformEngine,
        rows: &RowBatch,
        as_of: NaiveDate,
    ) -> Result<Vec<RowOutcome>, TransformError> {
        self.follow_swap(engine)?;
        self.instance.process(&self.plan, rows, as_of)
    }

    fn follow_swap(&mut self, engine: &TransformEngine) -> Result<(), TransformError> {
        let Some((slot, seen)) = &self.slot else {
            return Ok(());
        };
        if slot.version() == *seen {
            return Ok(());
        }
        let (version, module) = slot.current();
        let instance =
            TransformInstance::with_limits(engine, &module, self.instance.limits().clone())?;
        // The registry validated the new version against these columns; planning again is cheap.
        let plan = plan_for(
            instance.info(),
            &self.columns,
            self.group_column.as_deref(),
            self.clinic_tz,
        )?;
        tracing::info!(
            module = %instance.info().name,
            sha256 = %module.sha256,
            "run continues with the swapped-in module version"
        );
        self.used.push(module.sha256.clone());
        self.instance = instance;
        self.plan = plan;
        self.slot = Some((slot.clone(), version));
        Ok(())
    }
}

fn plan_for(
    info: &ModuleInfo,
    columns: &[ColumnInfo],
    group_column: Option<&str>,
    tz: Tz,
) -> Result<BatchPlan, TransformError> {
    let plan = BatchPlan::new(info, columns, tz)?;
    match group_column {
        Some(c) => plan.with_group_column(c, columns),
        None => Ok(plan),
    }
}
