//! What a module folder holds: the analyst's files (`transform new` writes them once) and the
//! kit's own (the SDK and the WIT world, which `transform build` keeps equal to this reqsync's).

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, bail};

use super::files::{self, KitFile};
use super::manifest::{Language, Manifest, ModuleSection};

/// The default modules a new one can start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    Patients,
    VaccineDoses,
}

impl Template {
    pub fn module_name(self) -> &'static str {
        match self {
            Template::Patients => "patients",
            Template::VaccineDoses => "vaccine-doses",
        }
    }
}

/// A file to write: its path in the module folder and its content.
#[derive(Debug, Clone)]
pub struct Planned {
    pub path: String,
    pub contents: Cow<'static, [u8]>,
}

fn from_kit(list: &[KitFile]) -> impl Iterator<Item = Planned> + '_ {
    list.iter().map(|f| Planned {
        path: f.path.to_owned(),
        contents: Cow::Borrowed(f.contents),
    })
}

fn text(path: &str, contents: String) -> Planned {
    Planned {
        path: path.to_owned(),
        contents: Cow::Owned(contents.into_bytes()),
    }
}

fn fixed(path: &str, contents: &'static str) -> Planned {
    Planned {
        path: path.to_owned(),
        contents: Cow::Borrowed(contents.as_bytes()),
    }
}

/// The kit's own files in a folder of `language` starting from `template`: refreshed by every
/// build, so the SDK always matches the WIT world of the reqsync that builds and runs it.
pub fn kit_owned(language: Language, template: Template) -> Vec<Planned> {
    match language {
        Language::Rust => {
            let mut out: Vec<Planned> = from_kit(files::RUST_SDK).collect();
            out.push(fixed(
                "sdk/reqsync-guest/Cargo.toml",
                files::RUST_SDK_MANIFEST,
            ));
            out.push(fixed("rust-toolchain.toml", RUST_TOOLCHAIN));
            if template == Template::VaccineDoses {
                out.extend(
                    from_kit(files::RUST_VACCINE_DOSES).filter(|f| f.path.starts_with("sdk/")),
                );
                out.push(fixed(
                    "sdk/transform-patients/Cargo.toml",
                    files::RUST_PATIENTS_DEPENDENCY_MANIFEST,
                ));
            }
            out
        }
        Language::Python => from_kit(files::PYTHON_SDK)
            .chain(from_kit(files::WIT))
            .collect(),
        Language::JavaScript => from_kit(files::JAVASCRIPT_SDK)
            .chain(from_kit(files::WIT))
            .collect(),
    }
}

/// Which kit-owned files a folder has: read from what is there, so a build refreshes the
/// vaccine-doses extras only in a folder that has them.
pub fn template_of(dir: &Path) -> Template {
    if dir.join("sdk/transform-patients").is_dir() {
        Template::VaccineDoses
    } else {
        Template::Patients
    }
}

/// Everything `transform new` writes.
pub fn new_module(language: Language, template: Template) -> Vec<Planned> {
    let name = template.module_name();
    let (starter, rules, entry): (&[KitFile], &[KitFile], Option<&str>) = match (language, template)
    {
        (Language::Rust, Template::Patients) => {
            (files::RUST_PATIENTS, files::RUST_CLINIC_RULES, None)
        }
        (Language::Rust, Template::VaccineDoses) => {
            (files::RUST_VACCINE_DOSES, files::RUST_CLINIC_RULES, None)
        }
        (Language::Python, Template::Patients) => (
            files::PYTHON_PATIENTS,
            files::PYTHON_CLINIC_RULES,
            Some("app.py"),
        ),
        (Language::Python, Template::VaccineDoses) => (
            files::PYTHON_VACCINE_DOSES,
            files::PYTHON_CLINIC_RULES,
            Some("app.py"),
        ),
        (Language::JavaScript, Template::Patients) => (
            files::JAVASCRIPT_PATIENTS,
            files::JAVASCRIPT_CLINIC_RULES,
            Some("patients.js"),
        ),
        (Language::JavaScript, Template::VaccineDoses) => (
            files::JAVASCRIPT_VACCINE_DOSES,
            files::JAVASCRIPT_CLINIC_RULES,
            Some("vaccine-doses.js"),
        ),
    };
    let manifest = Manifest {
        module: ModuleSection {
            name: name.to_owned(),
            language,
            entry: entry.map(str::to_owned),
        },
    };
    let mut out: Vec<Planned> = vec![
        text(super::manifest::FILE_NAME, manifest.to_toml()),
        text("README.md", readme(language, template, entry)),
        fixed(".gitignore", GITIGNORE),
    ];
    // The kit's SDK copies of sources are not the analyst's: `kit_owned` has them.
    out.extend(from_kit(starter).filter(|f| !f.path.starts_with("sdk/")));
    out.extend(from_kit(rules));
    if language == Language::Rust {
        out.push(text("Cargo.toml", rust_manifest(template)));
        out.push(fixed(
            "clinic-rules/Cargo.toml",
            files::RUST_CLINIC_RULES_MANIFEST,
        ));
    }
    out.extend(kit_owned(language, template));
    out
}

/// Refuses a folder with anything in it: a new module never overwrites someone's files.
pub fn check_empty(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty: name a new folder",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Writes `planned` into `dir`, which must not exist or be empty.
pub fn write_new(dir: &Path, planned: &[Planned]) -> anyhow::Result<()> {
    check_empty(dir)?;
    for file in planned {
        write_file(dir, file)?;
    }
    Ok(())
}

/// Rewrites the kit-owned files of a module folder that differ from this reqsync's; returns
/// the paths rewritten.
pub fn refresh_kit_files(dir: &Path, language: Language) -> anyhow::Result<Vec<String>> {
    let mut refreshed = Vec::new();
    for file in kit_owned(language, template_of(dir)) {
        let path = dir.join(&file.path);
        let same = std::fs::read(&path).is_ok_and(|c| c == *file.contents);
        if !same {
            write_file(dir, &file)?;
            refreshed.push(file.path);
        }
    }
    Ok(refreshed)
}

fn write_file(dir: &Path, file: &Planned) -> anyhow::Result<()> {
    let path = dir.join(&file.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // A link is replaced, never written through: the kit's files are the folder's own.
    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    std::fs::write(&path, &file.contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

const RUST_TOOLCHAIN: &str = r#"# The compiler the reqsync guest SDK is built and tested with; rustup installs it and the
# WebAssembly target on the first build. Written by reqsync; refreshed by `reqsync transform build`.
[toolchain]
channel = "1.95.0"
targets = ["wasm32-wasip2"]
profile = "minimal"
"#;

const GITIGNORE: &str = "build/\ntarget/\n__pycache__/\n";

fn rust_manifest(template: Template) -> String {
    let name = template.module_name();
    let doses = if template == Template::VaccineDoses {
        "# The default patients module: the property tests check that doses of a patient it\n\
         # rejects are held back.\n\
         transform-patients = { path = \"sdk/transform-patients\" }\n"
    } else {
        ""
    };
    format!(
        r#"[package]
name = "transform-{name}"
description = "A reqsync transform module (a wasm32-wasip2 component)"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
reqsync-guest = {{ path = "sdk/reqsync-guest" }}
clinic-rules = {{ path = "clinic-rules" }}

[dev-dependencies]
# `cargo test` runs examples.json and the property tests natively, through the SDK's harness.
reqsync-guest = {{ path = "sdk/reqsync-guest", features = ["testing"] }}
serde_json = "1"
proptest = "1.12"
{doses}
# A folder of its own, not part of a workspace around it.
[workspace]
"#
    )
}

fn readme(language: Language, template: Template, entry: Option<&str>) -> String {
    let name = template.module_name();
    let cvx = if template == Template::VaccineDoses {
        "| `cvx_codes.csv` (Rust: `data/`) | the CDC CVX codes the module accepts, built into it |\n"
    } else {
        ""
    };
    let (edit, files) = match language {
        Language::Rust => (
            "src/lib.rs".to_owned(),
            format!(
                "| `src/lib.rs` | the module: the columns it reads, the fields it writes, the mapping of one row |\n\
                 | `clinic-rules/` | the default mapping rules, shared by the patients and vaccine-doses modules |\n\
                 | `tests/properties.rs` | property tests, run natively by `cargo test` |\n\
                 {cvx}\
                 | `sdk/`, `rust-toolchain.toml` | reqsync's guest SDK and the compiler it needs (reqsync's own: rewritten by every build) |\n"
            ),
        ),
        Language::Python => {
            let entry = entry.unwrap_or("app.py");
            (
                entry.to_owned(),
                format!(
                    "| `{entry}` | the module: the columns it reads, the fields it writes, and `row()`, which maps one row |\n\
                     | `clinic_rules.py` | the default mapping rules, one function per field |\n\
                     {cvx}\
                     | `reqsync_guest.py`, `value_rules.py`, `wit/` | the glue to reqsync and value helpers (reqsync's own: rewritten by every build) |\n"
                ),
            )
        }
        Language::JavaScript => {
            let entry = entry.unwrap_or("index.js");
            (
                entry.to_owned(),
                format!(
                    "| `{entry}` | the module: its columns, its fields and the mapping of one row |\n\
                     | `clinic-rules.js` | the default mapping rules, one function per field |\n\
                     {cvx}\
                     | `generate-*.mjs` | run by every build before componentize-js (they write generated sources) |\n\
                     | `reqsync-guest.js`, `rules.js`, `wit/` | the glue to reqsync and value helpers (reqsync's own: rewritten by every build) |\n"
                ),
            )
        }
    };
    format!(
        "# The `{name}` transform module ({language})\n\
         \n\
         Written by `reqsync transform new`. Change the rules in `{edit}`, describe the behaviour \
         you want in `examples.json` (a service only swaps in a module that passes its example \
         cases), and bump the module's version.\n\
         \n\
         | file | what |\n\
         | --- | --- |\n\
         | `reqsync-module.toml` | the module's name and language, for `reqsync transform build` |\n\
         | `examples.json` | example cases: rows and what the module must do with them |\n\
         {files}\
         \n\
         ## Commands\n\
         \n\
         ```sh\n\
         reqsync transform build                     # → build/{name}.wasm (+ build/{name}.examples.json)\n\
         reqsync transform test build/{name}.wasm    # example cases, then generated rows\n\
         reqsync transform dev . --config /path/to/project/reqsync.toml\n\
         ```\n\
         \n\
         `transform dev` watches this folder: on every save it builds, runs the example cases and \
         the property tests, compares the result with the project's active module on a sample of \
         the project's rows, and — only when all of that passed — copies the module into the \
         project's `transforms/` folder, where a running service swaps it in.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_and_default_module_has_a_manifest_and_examples() {
        for language in [Language::Rust, Language::Python, Language::JavaScript] {
            for template in [Template::Patients, Template::VaccineDoses] {
                let planned = new_module(language, template);
                let paths: Vec<&str> = planned.iter().map(|p| p.path.as_str()).collect();
                for needed in ["reqsync-module.toml", "examples.json", "README.md"] {
                    assert!(paths.contains(&needed), "{language} {template:?}: {needed}");
                }
                let mut sorted = paths.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), paths.len(), "a path written twice");
            }
        }
    }

    #[test]
    fn a_refresh_rewrites_only_changed_kit_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let planned = new_module(Language::Python, Template::Patients);
        write_new(dir.path(), &planned).expect("write");
        assert!(
            refresh_kit_files(dir.path(), Language::Python)
                .expect("refresh")
                .is_empty()
        );
        std::fs::write(dir.path().join("reqsync_guest.py"), "edited").expect("edit");
        std::fs::write(dir.path().join("app.py"), "the analyst's").expect("edit");
        let refreshed = refresh_kit_files(dir.path(), Language::Python).expect("refresh");
        assert_eq!(refreshed, ["reqsync_guest.py"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app.py")).expect("read"),
            "the analyst's"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_refresh_replaces_a_link_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_new(
            &dir.path().join("m"),
            &new_module(Language::Python, Template::Patients),
        )
        .expect("write");
        let elsewhere = dir.path().join("elsewhere.py");
        std::fs::write(&elsewhere, "someone else's").expect("write");
        let glue = dir.path().join("m/reqsync_guest.py");
        std::fs::remove_file(&glue).expect("remove");
        std::os::unix::fs::symlink(&elsewhere, &glue).expect("link");
        refresh_kit_files(&dir.path().join("m"), Language::Python).expect("refresh");
        assert_eq!(
            std::fs::read_to_string(&elsewhere).expect("read"),
            "someone else's"
        );
        assert!(
            !std::fs::symlink_metadata(&glue)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_new_module_never_writes_into_a_folder_with_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep.txt"), "mine").expect("write");
        let planned = new_module(Language::Rust, Template::Patients);
        let error = write_new(dir.path(), &planned).expect_err("refused");
        assert!(error.to_string().contains("not empty"), "{error}");
    }
}
