//! `reqsync-module.toml`: what a module folder is — its name, language and entry file — for
//! `reqsync transform build` and `dev`. Written by `reqsync transform new`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "reqsync-module.toml";

/// The languages a module can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    #[value(name = "js", alias = "javascript")]
    #[serde(rename = "javascript", alias = "js")]
    JavaScript,
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub module: ModuleSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSection {
    /// The built file's name: `build/NAME.wasm` (and `build/NAME.examples.json`).
    pub name: String,
    pub language: Language,
    /// Python: the module defining the `Transform` subclass; JavaScript: the file exporting
    /// `describe` and `transform`. Rust builds the crate in `Cargo.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

impl Manifest {
    /// Reads the manifest of the module folder `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(FILE_NAME);
        if !path.is_file() {
            bail!(
                "{} is not a module folder: it has no {FILE_NAME} (make one with `reqsync \
                 transform new`)",
                dir.display()
            );
        }
        let text = reqsync_runtime::input_file::read_to_string(
            &path,
            reqsync_runtime::input_file::CONFIG,
        )?;
        let manifest: Manifest =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        manifest.check(&path)?;
        Ok(manifest)
    }

    fn check(&self, path: &Path) -> anyhow::Result<()> {
        check_name(&self.module.name)
            .with_context(|| format!("`module.name` in {}", path.display()))?;
        match (self.module.language, &self.module.entry) {
            (Language::Rust, _) => {}
            (_, None) => bail!(
                "`module.entry` is missing in {}: name the file the build starts from",
                path.display()
            ),
            (_, Some(entry)) => {
                let entry_path = Path::new(entry);
                if entry_path.components().count() != 1 || entry_path.is_absolute() {
                    bail!(
                        "`module.entry` in {} must be a file name in the module folder, not `{entry}`",
                        path.display()
                    );
                }
            }
        }
        Ok(())
    }

    /// The built module: `build/NAME.wasm` in the module folder.
    pub fn output(&self, dir: &Path) -> PathBuf {
        dir.join("build").join(format!("{}.wasm", self.module.name))
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# A reqsync transform module: `reqsync transform build` reads this file \
             (see README.md).\n{body}"
        )
    }
}

/// Module names become file names: lower-case letters, digits and `-`, starting with a letter.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "`{name}` is not a module name: use lower-case letters, digits and `-`, starting \
             with a letter (at most 64)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_manifest_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = Manifest {
            module: ModuleSection {
                name: "patients".into(),
                language: Language::JavaScript,
                entry: Some("patients.js".into()),
            },
        };
        std::fs::write(dir.path().join(FILE_NAME), manifest.to_toml()).expect("write");
        let read = Manifest::load(dir.path()).expect("load");
        assert_eq!(read.module.language, Language::JavaScript);
        assert_eq!(read.module.entry.as_deref(), Some("patients.js"));
        assert!(manifest.to_toml().contains("language = \"javascript\""));
    }

    #[test]
    fn an_entry_outside_the_module_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FILE_NAME),
            "[module]\nname = \"patients\"\nlanguage = \"python\"\nentry = \"../app.py\"\n",
        )
        .expect("write");
        let error = Manifest::load(dir.path()).expect_err("refused").to_string();
        assert!(error.contains("must be a file name"), "{error}");
    }

    #[test]
    fn module_names_that_are_not_plain_file_names_are_refused() {
        for bad in ["", "Patients", "../x", "a b", "1x", "x.wasm"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("vaccine-doses").expect("a good name");
    }
}
