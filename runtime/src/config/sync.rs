//! `[sync]`: the clinic's clock, the window, the transform sandbox's limits, and where a
//! project keeps its state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use serde::Deserialize;

use crate::transform::SandboxLimits;

use super::{Context, Invalid, parse_duration};

/// The clinic is in Kansas City: its database's timestamps carry no offset.
pub const DEFAULT_CLINIC_TIME_ZONE: &str = "America/Chicago";
/// Default look-back subtracted from ReqCheck's last import time: late-committed source rows
/// carry an `updated_at` before it.
pub const DEFAULT_LOOK_BACK: &str = "1d";
/// Rows per transform call (`transform_batch_rows`).
pub const DEFAULT_TRANSFORM_BATCH_ROWS: usize = 512;
const MAX_TRANSFORM_BATCH_ROWS: usize = 65_536;
/// The compiled-module cache, relative to the config file.
pub const DEFAULT_CACHE_DIR: &str = ".reqsync/cache";
/// The run ledger, run reports and quarantine, relative to the config file.
pub const DEFAULT_STATE_DIR: &str = ".reqsync/state";

// The largest sandbox limits a config may set (the smallest is 1).
const MAX_DEADLINE_MS: u64 = 3_600_000;
// wasm32 linear memory cannot exceed 4 GiB.
const MAX_MEMORY_MB: u64 = 4096;
const MAX_RECORD_KB: u64 = 1 << 20;

/// `[sync]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    /// IANA time zone of the source's timestamps (default [`DEFAULT_CLINIC_TIME_ZONE`]).
    clinic_time_zone: Option<String>,
    /// Subtracted from ReqCheck's last import time, e.g. `"1d"`, `"12h"` (default
    /// [`DEFAULT_LOOK_BACK`]).
    look_back: Option<String>,
    /// Window start when ReqCheck has no import yet (`YYYY-MM-DDTHH:MM:SS`, clinic time).
    /// Without it the first run is a full extract.
    initial_start: Option<String>,
    /// Rows per transform call (default [`DEFAULT_TRANSFORM_BATCH_ROWS`]).
    transform_batch_rows: Option<usize>,
    /// Wall-clock budget of one transform call, in milliseconds (default
    /// `SandboxLimits::default().call_deadline`).
    transform_deadline_ms: Option<u64>,
    /// Memory a transform instance may grow to, in MiB (default
    /// `SandboxLimits::default().memory_bytes`).
    transform_memory_mb: Option<u64>,
    /// Largest record a transform may emit, in KiB of JSON (default
    /// `SandboxLimits::default().max_record_bytes`).
    transform_max_record_kb: Option<u64>,
    /// Folder for precompiled transform modules (default [`DEFAULT_CACHE_DIR`]).
    cache_dir: Option<PathBuf>,
    /// Folder for the run ledger, run reports and quarantine (default [`DEFAULT_STATE_DIR`]).
    state_dir: Option<PathBuf>,
    /// `"fail"` (the default, [`PartialFailurePolicy::Fail`]) or `"accept"`: what a
    /// `201 partial_failure` answer means for the run.
    on_partial_failure: Option<String>,
}

/// The sandbox-limit keys of `[sync]` (for every job's module) and of a `[[jobs]]` section
/// (for its own): `transform_deadline_ms`, `transform_memory_mb`, `transform_max_record_kb`.
pub(super) struct SandboxKeys {
    pub(super) deadline_ms: Option<u64>,
    pub(super) memory_mb: Option<u64>,
    pub(super) max_record_kb: Option<u64>,
}

impl SandboxKeys {
    /// `base` with the limits this section sets; a zero or absurd value is an error naming
    /// `prefix` + its key.
    pub(super) fn apply(
        &self,
        base: &SandboxLimits,
        prefix: &str,
    ) -> Result<SandboxLimits, Invalid> {
        let mut limits = base.clone();
        let positive = |key: &str, v: u64, max: u64| {
            if v == 0 || v > max {
                Err(Invalid::new(
                    format!("{prefix}{key}"),
                    format!("must be between 1 and {max}"),
                ))
            } else {
                Ok(v)
            }
        };
        if let Some(v) = self.deadline_ms {
            limits.call_deadline =
                Duration::from_millis(positive("transform_deadline_ms", v, MAX_DEADLINE_MS)?);
        }
        if let Some(v) = self.memory_mb {
            limits.memory_bytes =
                (positive("transform_memory_mb", v, MAX_MEMORY_MB)? as usize) << 20;
        }
        if let Some(v) = self.max_record_kb {
            limits.max_record_bytes =
                (positive("transform_max_record_kb", v, MAX_RECORD_KB)? as usize) << 10;
        }
        Ok(limits)
    }
}

/// What ReqCheck's `201 partial_failure` (an import stored with record errors) means for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartialFailurePolicy {
    /// The run fails (exit code 7) and does not count as complete, so the next run re-sends
    /// its window: a record error caused by something passing heals without anyone acting.
    #[default]
    Fail,
    /// The run succeeds; the error ids are still reported and kept in the ledger.
    Accept,
}

impl PartialFailurePolicy {
    /// The value of `on_partial_failure` that selects this policy.
    pub fn as_str(self) -> &'static str {
        match self {
            PartialFailurePolicy::Fail => "fail",
            PartialFailurePolicy::Accept => "accept",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [PartialFailurePolicy::Fail, PartialFailurePolicy::Accept]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// `[sync]`, validated; its values are fields of [`super::Config`].
pub(super) struct SyncSettings {
    pub(super) clinic_tz: Tz,
    pub(super) look_back: chrono::Duration,
    pub(super) initial_start: Option<NaiveDateTime>,
    pub(super) transform_batch_rows: usize,
    pub(super) sandbox: SandboxLimits,
    pub(super) cache_dir: PathBuf,
    pub(super) state_dir: PathBuf,
    pub(super) on_partial_failure: PartialFailurePolicy,
}

impl SyncSettings {
    pub(super) fn from_raw(s: RawSync, cx: &Context) -> Result<Self, Invalid> {
        let clinic_tz: Tz = s
            .clinic_time_zone
            .as_deref()
            .unwrap_or(DEFAULT_CLINIC_TIME_ZONE)
            .parse()
            .map_err(|_| {
                Invalid::new(
                    "sync.clinic_time_zone",
                    format!("not an IANA time zone name (e.g. {DEFAULT_CLINIC_TIME_ZONE})"),
                )
            })?;
        let look_back = parse_duration(s.look_back.as_deref().unwrap_or(DEFAULT_LOOK_BACK))
            .map_err(|e| Invalid::new("sync.look_back", e))?;
        let look_back =
            chrono::Duration::from_std(look_back).map_err(|e| Invalid::new("sync.look_back", e))?;
        let initial_start = s
            .initial_start
            .map(|v| {
                crate::transform::parse_timestamp(&v).ok_or_else(|| {
                    Invalid::new(
                        "sync.initial_start",
                        "expected YYYY-MM-DDTHH:MM:SS (clinic local time)",
                    )
                })
            })
            .transpose()?;
        let transform_batch_rows = s
            .transform_batch_rows
            .unwrap_or(DEFAULT_TRANSFORM_BATCH_ROWS);
        if !(1..=MAX_TRANSFORM_BATCH_ROWS).contains(&transform_batch_rows) {
            return Err(Invalid::new(
                "sync.transform_batch_rows",
                format!("must be between 1 and {MAX_TRANSFORM_BATCH_ROWS}"),
            ));
        }
        let sandbox = SandboxKeys {
            deadline_ms: s.transform_deadline_ms,
            memory_mb: s.transform_memory_mb,
            max_record_kb: s.transform_max_record_kb,
        }
        .apply(&SandboxLimits::default(), "sync.")?;
        let dir = |set: Option<PathBuf>, default: &str| {
            cx.rel(set.as_deref().unwrap_or(Path::new(default)))
        };
        let cache_dir = dir(s.cache_dir, DEFAULT_CACHE_DIR);
        let state_dir = dir(s.state_dir, DEFAULT_STATE_DIR);
        let on_partial_failure = match s.on_partial_failure.as_deref() {
            None => PartialFailurePolicy::default(),
            Some(text) => PartialFailurePolicy::parse(text).ok_or_else(|| {
                Invalid::new(
                    "sync.on_partial_failure",
                    format!("`{text}` is neither \"fail\" nor \"accept\""),
                )
            })?,
        };
        Ok(SyncSettings {
            clinic_tz,
            look_back,
            initial_start,
            transform_batch_rows,
            sandbox,
            cache_dir,
            state_dir,
            on_partial_failure,
        })
    }
}
