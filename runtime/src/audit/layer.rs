//! The tracing layer: every event with target `reqsync::audit` becomes one entry.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterFn, Filtered, LevelFilter, filter_fn};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use super::{AuditError, AuditWriter, TARGET};

/// Where the layer's entries go.
#[derive(Debug, Clone)]
enum Sink {
    /// The file [`super::open`] points the process at, if any.
    Global,
    /// A file of its own (tests, tools).
    Writer(Arc<AuditWriter>),
}

/// Records audit events. Use it through [`layer`] (or [`AuditLayer::filtered`]), which adds the
/// filter that lets it see every audit event whatever the log level.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    sink: Sink,
}

/// The audit filter: exactly target `reqsync::audit` (not modules below it, which is where the
/// writer's own error lives), INFO and above, events only.
pub type AuditFilter = FilterFn<fn(&Metadata<'_>) -> bool>;

fn is_audit(meta: &Metadata<'_>) -> bool {
    meta.is_event() && meta.target() == TARGET && *meta.level() <= Level::INFO
}

/// The layer `cli::logging` installs: writes to the file [`super::open`] sets, drops events
/// while none is open. Its per-layer filter is independent of the stderr log's, so `-v` flags
/// and `REQSYNC_LOG` change what is printed, never what is audited.
pub fn layer<S>() -> Filtered<AuditLayer, AuditFilter, S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    AuditLayer { sink: Sink::Global }.filtered()
}

impl AuditLayer {
    /// A layer writing to `writer` instead of the process-wide file.
    pub fn to(writer: Arc<AuditWriter>) -> Self {
        AuditLayer {
            sink: Sink::Writer(writer),
        }
    }

    /// This layer behind the audit filter.
    pub(crate) fn filtered<S>(self) -> Filtered<AuditLayer, AuditFilter, S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let filter: AuditFilter =
            filter_fn(is_audit as fn(&Metadata<'_>) -> bool).with_max_level_hint(LevelFilter::INFO);
        self.with_filter(filter)
    }
}

impl<S: Subscriber> Layer<S> for AuditLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        // The filter already chose; this guards a layer installed without it.
        if !is_audit(event.metadata()) {
            return;
        }
        let writer = match &self.sink {
            Sink::Global => super::current(),
            Sink::Writer(w) => Some(w.clone()),
        };
        // No file open (a command without a config, e.g. `seed`): nothing to record into.
        let Some(writer) = writer else { return };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let appended = writer.append(event.metadata().level().as_str(), fields.0);
        LAST_APPEND_FAILED.set(appended.is_err());
        if let Err(e) = appended {
            complain(&e);
        }
    }
}

std::thread_local! {
    /// Whether the last audit entry this thread emitted could not be written. A layer runs on
    /// the emitting thread, inside the `tracing` macro, so the flag is set by the time the macro
    /// returns; [`require`] reads it.
    static LAST_APPEND_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The audit trail could not record an entry that must be on disk before the run goes on.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot write the audit trail (the error is logged above; a full disk?), so nothing more is \
     sent: every request must be audited before it leaves. Free space or fix the trail's \
     folder and run again; the next run re-sends this window"
)]
pub struct Unrecorded;

/// Emits an audit event with `emit` and fails if the trail could not record it. Most events are
/// best effort (a half-sent run goes on and complains); this is for the one before a request
/// leaves, so that ReqCheck never holds an import the trail does not know was sent.
pub fn require(emit: impl FnOnce()) -> Result<(), Unrecorded> {
    LAST_APPEND_FAILED.set(false);
    emit();
    if LAST_APPEND_FAILED.replace(false) {
        Err(Unrecorded)
    } else {
        Ok(())
    }
}

/// Reports a failed append on the normal log. A run goes on (the audit trail must not stop a
/// sync that is half sent), but loudly; the next append re-reads the file's tail, so it chains
/// correctly once the cause is gone.
///
/// The error is logged from a short-lived thread that is joined at once. An event emitted from
/// inside `on_event`, on the same thread, re-enters the subscriber in the middle of its
/// per-layer filter pass, whose state tracing-subscriber keeps per thread. That happens to work
/// while this layer is the outermost one, but it rests on tracing-subscriber internals and on
/// the layer order in `cli::logging`; a fresh thread has fresh state and depends on neither.
fn complain(error: &AuditError) {
    let message = error.to_string();
    let logged = std::thread::Builder::new()
        .name("audit-error".into())
        .spawn(move || {
            tracing::error!(error = %message, "cannot write the audit trail");
        })
        .map(|t| t.join());
    if !matches!(logged, Ok(Ok(()))) {
        eprintln!("error: cannot write the audit trail: {error}");
    }
}

/// An event's fields as JSON values.
#[derive(Debug, Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those are kept as their names.
        let v =
            Number::from_f64(value).map_or_else(|| Value::from(value.to_string()), Value::Number);
        self.put(field, v);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let v = i64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.put(field, v);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let v = u64::try_from(value).map_or_else(|_| Value::from(value.to_string()), Value::from);
        self.put(field, v);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }

    /// `%display`, `?debug` and the message (`format_args!`) arrive here: kept as strings.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

/// A subscriber that records audit events into `writer` and does nothing else: for tests
/// (`tracing::subscriber::with_default`) and [`super::AuditCapture`].
pub fn subscriber(writer: Arc<AuditWriter>) -> impl Subscriber + Send + Sync {
    tracing_subscriber::registry().with(AuditLayer::to(writer).filtered())
}
