//! End-to-end tests across the whole pipeline: a real SQLite (or PostgreSQL, see
//! `sources_postgres`) clinic database, the real default wasm modules, the project's
//! ReqCheck-compatible receiver over HTTP on a real socket.
//! One test binary, grouped by capability.

mod analyst_kit;
mod audit;
mod bad_input;
mod batches;
mod cli;
mod connect_proxy;
mod daemon;
mod delivery_faults;
mod examples;
mod guest_javascript;
mod guest_python;
mod hostile_reqcheck;
mod hot_swap;
mod incremental;
mod ledger_cli;
mod notify;
mod overlap;
mod phi;
mod phi_sweep;
mod platform_commands;
mod progress_line;
mod proxy;
mod recovery;
mod rejections;
mod sandbox;
mod security_daemon;
// Owner-only modes, links and devices as Unix has them (Windows relies on folder ACLs, see
// docs/SECURITY.md).
mod secret_store;
#[cfg(unix)]
mod security_files;
#[cfg(unix)]
mod security_inputs;
mod security_reqcheck;
mod security_templates;
mod seed_sqlserver;
mod sources_postgres;
mod sources_sqlserver;
mod sqlserver_windows_auth;
mod status;
mod status_page;
mod support;
mod sync;
mod tds_double;
mod tls;
mod transform_cli;
mod transform_test;
// Runs the tutorial's shell commands in bash.
#[cfg(unix)]
mod tutorial;
