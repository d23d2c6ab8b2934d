//! Building a module folder into `build/NAME.wasm`, for all three languages, with the kit's
//! pinned toolchains. A build writes its output beside the target and renames it into place,
//! so a failed build never leaves a half-written module where a watcher would pick it up.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::manifest::{Language, Manifest};
use super::toolchain::{self, Toolchains};
use super::{scaffold, sources};

/// What a build produced.
#[derive(Debug)]
pub struct Built {
    pub module: PathBuf,
    /// `None` when the folder has no `examples.json` (hot swap then refuses the module).
    pub examples: Option<PathBuf>,
    /// SDK files rewritten to match this reqsync.
    pub refreshed: Vec<String>,
    /// What built it, for the report ("componentize-py 0.25.1").
    pub tool: String,
    /// The sources had not changed since the last build, which was kept.
    pub up_to_date: bool,
    pub took: Duration,
}

/// Builds the module folder `dir`.
pub fn build(dir: &Path, toolchains: &Toolchains) -> anyhow::Result<Built> {
    let started = Instant::now();
    // Absolute: the tools run from other folders.
    let dir =
        &std::path::absolute(dir).with_context(|| format!("cannot find {}", dir.display()))?;
    let manifest = Manifest::load(dir)?;
    let language = manifest.module.language;
    let refreshed = scaffold::refresh_kit_files(dir, language)?;
    let out_dir = dir.join("build");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let target = manifest.output(dir);
    let partial = out_dir.join(format!(".{}.partial.wasm", manifest.module.name));
    let _ = std::fs::remove_file(&partial);
    // Python and JavaScript builds are not reproducible (every build is a new file, which a
    // service would compile and swap in again), so an unchanged folder is not built again.
    // Rust's are, and cargo keeps its own account of what changed.
    let stamp = out_dir.join(format!(".{}.inputs", manifest.module.name));
    let (tool, up_to_date) = match language {
        Language::Rust => (build_rust(dir, &partial)?, false),
        Language::Python | Language::JavaScript => {
            if language == Language::JavaScript {
                run_generators(dir, toolchains)?;
            }
            let tool = match language {
                Language::Python => toolchains.python_tool_id()?,
                _ => toolchains.javascript_tool_id()?,
            };
            let inputs = sources::inputs_hash(
                dir,
                &format!("reqsync {} {tool}", env!("CARGO_PKG_VERSION")),
            )
            .with_context(|| format!("cannot read the sources in {}", dir.display()))?;
            if target.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == inputs) {
                (tool, true)
            } else {
                let _ = std::fs::remove_file(&stamp);
                match language {
                    Language::Python => build_python(dir, &manifest, toolchains, &partial)?,
                    _ => build_javascript(dir, &manifest, toolchains, &partial)?,
                };
                std::fs::write(&stamp, &inputs)
                    .with_context(|| format!("cannot write {}", stamp.display()))?;
                (tool, false)
            }
        }
    };
    let examples_source = dir.join("examples.json");
    let examples = if examples_source.is_file() {
        let dest = target.with_extension("examples.json");
        copy_into_place(&examples_source, &dest)?;
        Some(dest)
    } else {
        None
    };
    if !up_to_date {
        std::fs::rename(&partial, &target)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(Built {
        module: target,
        examples,
        refreshed,
        tool,
        up_to_date,
        took: started.elapsed(),
    })
}

/// `cargo build --release --target wasm32-wasip2`, then the component cargo reports.
fn build_rust(dir: &Path, out: &Path) -> anyhow::Result<String> {
    toolchain::check_cargo()?;
    let output = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--lib",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("the Rust build failed (cargo's messages are above)");
    }
    // The artifact's path as cargo reports it: right whatever CARGO_TARGET_DIR says. Only the
    // module's own crate (the SDK and the rules are built too); both sides canonical, since a
    // folder reached through a link is reported by its real path.
    let module_dir = canonical(dir);
    let wasm = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["manifest_path"]
                    .as_str()
                    .and_then(|p| Path::new(p).parent().map(canonical))
                    .is_some_and(|p| p == module_dir)
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm file: is the crate a `cdylib` (Cargo.toml, [lib])?")?;
    std::fs::copy(&wasm, out).with_context(|| format!("cannot copy {}", wasm.display()))?;
    let rustc = Command::new("rustc")
        .arg("--version")
        .current_dir(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "rustc".into());
    Ok(rustc)
}

/// componentize-py over the folder's Python files.
fn build_python(
    dir: &Path,
    manifest: &Manifest,
    toolchains: &Toolchains,
    out: &Path,
) -> anyhow::Result<()> {
    let python = toolchains.python()?;
    let entry = manifest.module.entry.as_deref().unwrap_or("app.py");
    let module = entry.strip_suffix(".py").unwrap_or(entry);
    if !dir.join(entry).is_file() {
        bail!("the entry file {} is missing", dir.join(entry).display());
    }
    // From a copy of the folder's files (Python and the data they read at import, such as the
    // CVX list): componentize-py writes __pycache__ into the folder it imports from, and
    // subfolders (wit/, tests, scratch) have no place in the component.
    let scratch = tempfile_dir(dir)?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if let Some(name) = path.file_name()
            && path.is_file()
            && !sources::is_ignored(Path::new(name))
        {
            std::fs::copy(&path, scratch.path().join(name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    // --stub-wasi: CPython's WASI build imports files and sockets, which the sandbox refuses;
    // stubbed, the component imports only reqsync's types (a module reads nothing but its
    // batch; its imports run at build time, when the initialised interpreter is snapshotted).
    let status = Command::new(&python.componentize_py)
        .arg("-d")
        .arg(dir.join("wit"))
        .args(["-w", "transform", "componentize", "--stub-wasi", "-p"])
        .arg(scratch.path())
        .arg(module)
        .arg("-o")
        .arg(out)
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .context("cannot run componentize-py")?;
    if !status.success() {
        bail!("the Python build failed (componentize-py's messages are above)");
    }
    Ok(())
}

/// componentize-js from the entry file (its relative imports resolve from the module folder).
fn build_javascript(
    dir: &Path,
    manifest: &Manifest,
    toolchains: &Toolchains,
    out: &Path,
) -> anyhow::Result<()> {
    let js = toolchains.javascript()?;
    let entry = dir.join(manifest.module.entry.as_deref().unwrap_or("index.js"));
    if !entry.is_file() {
        bail!("the entry file {} is missing", entry.display());
    }
    let status = Command::new(&js.node)
        .arg(&js.build_script)
        .arg(&entry)
        .arg(dir.join("wit"))
        .arg(out)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .context("cannot run Node.js")?;
    if !status.success() {
        bail!("the JavaScript build failed (componentize-js's messages are above)");
    }
    Ok(())
}

/// Runs the folder's `generate-*.mjs` scripts (in name order) with Node.js: JavaScript inside
/// the component cannot read files, so data such as the CVX code list becomes a source file
/// first. Run before the inputs are hashed, so the hash covers what they write.
fn run_generators(dir: &Path, toolchains: &Toolchains) -> anyhow::Result<()> {
    let mut generators: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("generate-") && n.ends_with(".mjs"))
        })
        .collect();
    if generators.is_empty() {
        return Ok(());
    }
    generators.sort();
    let js = toolchains.javascript()?;
    for generator in generators {
        let status = Command::new(&js.node)
            .arg(&generator)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::io::stderr())
            .stderr(Stdio::inherit())
            .status()
            .context("cannot run Node.js")?;
        if !status.success() {
            bail!(
                "{} failed (its messages are above)",
                generator.file_name().unwrap_or_default().to_string_lossy()
            );
        }
    }
    Ok(())
}

/// Copies `source` over `dest` all at once (beside it, then renamed).
pub fn copy_into_place(source: &Path, dest: &Path) -> anyhow::Result<()> {
    let partial = dest.with_extension("partial");
    std::fs::copy(source, &partial)
        .with_context(|| format!("cannot copy {} to {}", source.display(), partial.display()))?;
    std::fs::rename(&partial, dest).with_context(|| format!("cannot write {}", dest.display()))
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A scratch folder inside the module's `build/`, removed when dropped.
fn tempfile_dir(dir: &Path) -> anyhow::Result<ScratchDir> {
    let path = dir
        .join("build")
        .join(format!(".scratch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(ScratchDir(path))
}

struct ScratchDir(PathBuf);

impl ScratchDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
