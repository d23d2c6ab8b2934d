//! End-to-end tests across the whole pipeline: a real SQLite clinic database, the real default
//! wasm modules, the project's ReqCheck-compatible receiver over HTTP on a real socket.
//! One test binary, grouped by capability.

mod support;

mod batches;
mod cli;
mod examples;
mod incremental;
mod rejections;
mod sync;
mod tls;
