//! What a transform answered for each row, in host terms.

use compact_str::CompactString;
use serde::Serialize;

use super::record::Record;

/// A finding about one field: a stable code and a message that never quotes a row value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl Finding {
    /// `field:code`, the compact form used by example cases and summaries.
    pub fn tag(&self) -> String {
        format!("{}:{}", self.field, self.code)
    }
}

/// The module's verdict on one row.
#[derive(Clone, PartialEq)]
pub enum Verdict {
    /// A record for the target, with warnings about values that were dropped or repaired.
    Emit {
        record: Record,
        warnings: Vec<Finding>,
    },
    /// Held back without being an error in the row itself (e.g. its patient is not sent).
    Skip { code: String, message: String },
    /// Invalid: quarantined, never sent.
    Reject { findings: Vec<Finding> },
}

/// Records hold PHI: Debug shows the verdict's shape and codes, never field values.
impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Emit { record, warnings } => f
                .debug_struct("Emit")
                .field("fields", &record.keys().collect::<Vec<_>>())
                .field("warnings", warnings)
                .finish(),
            Verdict::Skip { code, .. } => f.debug_struct("Skip").field("code", code).finish(),
            Verdict::Reject { findings } => f
                .debug_struct("Reject")
                .field("findings", findings)
                .finish(),
        }
    }
}

/// One row's outcome: its key (the module's key column, e.g. `patno`; a key, not PHI) and the
/// verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct RowOutcome {
    /// Inline up to 24 bytes (every clinic key): two `String`s a row were an allocation each
    /// on the transform thread and a free on the rendering side.
    pub key: CompactString,
    /// The row's value of the job's group column (doses: the patient), when it has one.
    pub group: Option<CompactString>,
    pub verdict: Verdict,
}

/// Finding codes the host itself puts on a row when the *module* misbehaved on it (field `*`
/// or the offending field). Seeing one means the module, not the row, is at fault.
pub mod host_codes {
    pub(crate) const TRAP: &str = "transform-trap";
    pub(crate) const TIMEOUT: &str = "transform-timeout";
    pub(crate) const MEMORY_LIMIT: &str = "transform-memory-limit";
    pub(crate) const OUTPUT_TOO_LARGE: &str = "transform-output-too-large";
    pub(crate) const RECORD_SPAN_INVALID: &str = "record-span-invalid";
    pub(crate) const FIELD_INDEX_INVALID: &str = "field-index-invalid";
    pub(crate) const FIELD_VALUE_INVALID: &str = "field-value-invalid";
    pub(crate) const FIELD_REPEATED: &str = "field-repeated";
    /// Also what the guest SDK rejects a row with when it writes a name it did not declare.
    pub const UNDECLARED_FIELD: &str = "undeclared-field";
    pub(crate) const REQUIRED_FIELD_MISSING: &str = "required-field-missing";
    /// A text value with NUL or another control character (tab and line breaks aside): ReqCheck
    /// stores text in PostgreSQL, which refuses NUL, and the rest is never clinic data.
    pub const CONTROL_CHARACTER: &str = "control-character";

    pub const ALL: &[&str] = &[
        TRAP,
        TIMEOUT,
        MEMORY_LIMIT,
        OUTPUT_TOO_LARGE,
        RECORD_SPAN_INVALID,
        FIELD_INDEX_INVALID,
        FIELD_VALUE_INVALID,
        FIELD_REPEATED,
        UNDECLARED_FIELD,
        REQUIRED_FIELD_MISSING,
        CONTROL_CHARACTER,
    ];
}
