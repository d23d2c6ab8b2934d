//! The language toolchains a module folder builds with, installed on first use into a per-user
//! folder (`…/reqsync/toolchains`), at versions pinned here so every analyst's build of the same
//! source is built by the same tools.
//!
//! - Rust: the user's own `cargo` (rustup reads the module's `rust-toolchain.toml` and installs
//!   the pinned compiler and the `wasm32-wasip2` target by itself).
//! - Python: a virtual environment with componentize-py, from PyPI; needs Python 3.10+ with its
//!   `venv` module.
//! - JavaScript: componentize-js and what it imports, from npm (`npm ci` against the kit's lock
//!   file); needs Node.js 20+.
//!
//! The folder holds programs that build the modules a service then runs, so it is created
//! owner-only and refused when another user could write it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::files;

pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// componentize-js needs Node.js 20 (its parser, oxc-parser, requires it).
const MIN_NODE_MAJOR: u32 = 20;
const MIN_PYTHON: (u32, u32) = (3, 10);
/// Written last into an installed toolchain: a folder without it is a broken install.
const INSTALLED: &str = ".installed";

/// The per-user toolchain folder.
#[derive(Debug, Clone)]
pub struct Toolchains {
    root: PathBuf,
}

/// componentize-py, ready to run.
#[derive(Debug)]
pub struct PythonToolchain {
    pub componentize_py: PathBuf,
}

/// Node.js and the build script next to componentize-js.
#[derive(Debug)]
pub struct JavaScriptToolchain {
    pub node: PathBuf,
    pub node_version: String,
    /// Names the installed packages (a hash of the lock file).
    pub id: String,
    pub build_script: PathBuf,
    pub componentize_js_version: String,
}

impl Toolchains {
    /// `root` as given (e.g. `--toolchain-dir`), else the user's cache folder.
    pub fn locate(root: Option<PathBuf>) -> anyhow::Result<Self> {
        let root = match root {
            Some(root) => root,
            None => super::super::user_folder("XDG_CACHE_HOME", ".cache")
                .map(|d| d.join("toolchains"))
                .context(
                    "no folder for the build toolchains: set HOME (or XDG_CACHE_HOME), or pass \
                     --toolchain-dir",
                )?,
        };
        Ok(Self { root })
    }

    /// A folder under the root, created owner-only; refused when someone else could write it.
    fn private_folder(&self, relative: &str) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(relative);
        reqsync_private_fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the toolchain folder {}", dir.display()))?;
        for folder in [&self.root, &dir] {
            let meta = std::fs::symlink_metadata(folder)
                .with_context(|| format!("cannot read {}", folder.display()))?;
            let problem = if meta.file_type().is_symlink() {
                Some("it is a symbolic link".to_owned())
            } else if !reqsync_private_fs::owned_by_me(&meta) {
                Some("it belongs to another user".to_owned())
            } else if reqsync_private_fs::writable_by_others(&meta) {
                Some(format!(
                    "other users can write it (mode {})",
                    reqsync_private_fs::mode_text(&meta)
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                bail!(
                    "refusing the toolchain folder {}: {problem}. It holds the programs that \
                     build your modules, so only you may write it (e.g. `chmod 700 {}`)",
                    folder.display(),
                    folder.display()
                );
            }
        }
        Ok(dir)
    }

    /// componentize-py in a virtual environment of its own, installed on first use.
    pub fn python(&self) -> anyhow::Result<PythonToolchain> {
        let venv =
            self.private_folder(&format!("python/componentize-py-{COMPONENTIZE_PY_VERSION}"))?;
        let componentize_py = venv_program(&venv, "componentize-py");
        let stamp = venv.join(INSTALLED);
        if stamp.is_file() && componentize_py.is_file() {
            return Ok(PythonToolchain { componentize_py });
        }
        let python = find_python()?;
        eprintln!(
            "installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (first use only; \
             about a minute, from PyPI)",
            venv.display()
        );
        // A half-made environment from an interrupted install is started again from nothing.
        clear_folder(&venv)?;
        run_tool(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            "create a Python virtual environment",
            "Python's venv module is needed: on Debian or Ubuntu `sudo apt-get install \
             python3-venv`",
        )?;
        run_tool(
            Command::new(venv_program(&venv, "python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--progress-bar",
                    "on",
                ])
                .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}")),
            "install componentize-py",
            "check that PyPI (https://pypi.org) can be reached, or that pip's proxy settings \
             are right",
        )?;
        if !componentize_py.is_file() {
            bail!(
                "componentize-py installed, but {} is missing",
                componentize_py.display()
            );
        }
        std::fs::write(&stamp, COMPONENTIZE_PY_VERSION)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
        Ok(PythonToolchain { componentize_py })
    }

    /// What decides a Python build's output besides its sources.
    pub fn python_tool_id(&self) -> anyhow::Result<String> {
        Ok(format!("componentize-py {COMPONENTIZE_PY_VERSION}"))
    }

    /// What decides a JavaScript build's output besides its sources (installing the toolchain
    /// if needed).
    pub fn javascript_tool_id(&self) -> anyhow::Result<String> {
        let js = self.javascript()?;
        Ok(format!(
            "componentize-js {} ({}), Node.js {}",
            js.componentize_js_version, js.id, js.node_version
        ))
    }

    /// componentize-js, installed with `npm ci` from the kit's lock file on first use (a new
    /// lock file, a new folder: an older install is never half-upgraded).
    pub fn javascript(&self) -> anyhow::Result<JavaScriptToolchain> {
        let (node, node_version) = find_node()?;
        let mut hash = Sha256::new();
        for file in files::JAVASCRIPT_TOOLCHAIN {
            hash.update(file.path.as_bytes());
            hash.update(file.contents);
        }
        let id = &hex::encode(hash.finalize())[..16];
        let dir = self.private_folder(&format!("javascript/{id}"))?;
        let stamp = dir.join(INSTALLED);
        let package = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
        if !(stamp.is_file() && package.is_file()) {
            eprintln!(
                "installing componentize-js into {} (first use only; a minute or two, from npm)",
                dir.display()
            );
            clear_folder(&dir)?;
            for file in files::JAVASCRIPT_TOOLCHAIN {
                std::fs::write(dir.join(file.path), file.contents)
                    .with_context(|| format!("cannot write into {}", dir.display()))?;
            }
            run_tool(
                Command::new(npm_program())
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(&dir),
                "install componentize-js (npm ci)",
                "check that the npm registry (https://registry.npmjs.org) can be reached, or \
                 that npm's proxy settings are right",
            )?;
            std::fs::write(&stamp, id)
                .with_context(|| format!("cannot write {}", stamp.display()))?;
        }
        let version = std::fs::read_to_string(&package)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        Ok(JavaScriptToolchain {
            node,
            node_version,
            id: id.to_owned(),
            build_script: dir.join("build.mjs"),
            componentize_js_version: version,
        })
    }
}

/// `cargo`, or how to get it.
pub fn check_cargo() -> anyhow::Result<()> {
    match Command::new("cargo")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        _ => bail!(
            "Rust modules build with cargo, which was not found: install Rust with rustup \
             (https://rustup.rs); the module's rust-toolchain.toml then fetches the right \
             compiler and the wasm32-wasip2 target by itself"
        ),
    }
}

fn venv_program(venv: &Path, name: &str) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join(format!("{name}.exe"))
    } else {
        venv.join("bin").join(name)
    }
}

fn npm_program() -> &'static str {
    // npm is a batch file on Windows, which Command only finds by its full name.
    if cfg!(windows) { "npm.cmd" } else { "npm" }
}

/// A Python interpreter of at least [`MIN_PYTHON`].
fn find_python() -> anyhow::Result<PathBuf> {
    let candidates: &[&str] = if cfg!(windows) {
        &["python", "python3", "py"]
    } else {
        &["python3", "python"]
    };
    let mut found_old = None;
    for name in candidates {
        let Ok(out) = Command::new(name)
            .args([
                "-c",
                "import sys; print(sys.version_info[0], sys.version_info[1])",
            ])
            .stderr(Stdio::null())
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace().map(|p| p.parse::<u32>().ok());
        if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
            if (major, minor) >= MIN_PYTHON {
                return Ok(PathBuf::from(name));
            }
            found_old = Some(format!("{major}.{minor}"));
        }
    }
    let (major, minor) = MIN_PYTHON;
    match found_old {
        Some(version) => bail!(
            "Python {version} is too old: Python modules build with Python {major}.{minor} or \
             newer (https://www.python.org/downloads/)"
        ),
        None => bail!(
            "Python modules build with Python {major}.{minor} or newer, which was not found: \
             install it (Debian/Ubuntu: `sudo apt-get install python3 python3-venv`; Windows: \
             https://www.python.org/downloads/)"
        ),
    }
}

/// Node.js of at least [`MIN_NODE_MAJOR`], and its version.
fn find_node() -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new("node")
        .args(["-p", "process.versions.node"])
        .stderr(Stdio::null())
        .output();
    let version = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => bail!(
            "JavaScript modules build with Node.js {MIN_NODE_MAJOR} or newer, which was not \
             found: install it (https://nodejs.org, or Debian's nodejs package where it is new \
             enough)"
        ),
    };
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < MIN_NODE_MAJOR {
        bail!(
            "Node.js {version} is too old: componentize-js needs Node.js {MIN_NODE_MAJOR} or \
             newer (https://nodejs.org)"
        );
    }
    Ok((PathBuf::from("node"), version))
}

fn clear_folder(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("cannot clear {}", path.display()))?;
    }
    Ok(())
}

/// Runs an installer step with its output on the user's terminal (its own progress).
fn run_tool(command: &mut Command, what: &str, hint: &str) -> anyhow::Result<()> {
    let status = command
        .stdin(Stdio::null())
        // On stderr, like reqsync's own progress: stdout carries results.
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot {what}"))?;
    if !status.success() {
        bail!("could not {what} ({status}); {hint}");
    }
    Ok(())
}
