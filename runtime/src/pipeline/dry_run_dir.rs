//! The folder a dry run writes its request bodies into (`reqsync run --dry-run --out DIR`).
//!
//! The bodies hold names, dates of birth and addresses, so the folder is treated like any of
//! reqsync's own files: created owner-only, each body a new owner-only file that never follows
//! a link planted at its name. Bodies of an earlier dry run left beside new ones would be
//! indistinguishable from them, so the folder must start empty, or the caller asks for the
//! earlier bodies to be replaced.

use std::path::{Path, PathBuf};

/// A prepared output folder: exists, is a folder, and held no files but (removed) bodies.
#[derive(Debug, Clone)]
pub struct DryRunDir {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DryRunDirError {
    #[error("cannot use {} for the dry run's bodies: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error(
        "{} is not a folder (or is a link to one); give --out a folder of its own",
        path.display()
    )]
    NotAFolder { path: PathBuf },
    #[error(
        "{} already holds {count} file(s); a dry run writes into an empty folder so that its \
         bodies are not mistaken for an earlier run's. Choose another folder, or pass \
         --replace-out to delete the earlier run's bodies first",
        path.display()
    )]
    NotEmpty { path: PathBuf, count: usize },
    #[error(
        "{} holds {count} entr(y/ies) that are not request bodies of an earlier dry run \
         (`NNNN-<job>.json`); --replace-out deletes only those, so choose another folder",
        path.display()
    )]
    Foreign { path: PathBuf, count: usize },
}

impl DryRunDir {
    /// Creates the folder owner-only if missing. An existing one must be empty, or hold only an
    /// earlier dry run's bodies and `replace` be set (they are deleted).
    pub fn prepare(path: &Path, replace: bool) -> Result<Self, DryRunDirError> {
        let io = |e: std::io::Error| DryRunDirError::Io {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(DryRunDirError::NotAFolder {
                    path: path.to_path_buf(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                reqsync_private_fs::create_dir_all(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        }
        let mut bodies = Vec::new();
        let mut foreign = 0;
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let is_file = entry.file_type().map_err(io)?.is_file();
            if is_file && is_body_name(&entry.file_name().to_string_lossy()) {
                bodies.push(entry.path());
            } else {
                foreign += 1;
            }
        }
        let count = bodies.len() + foreign;
        if count > 0 && !replace {
            return Err(DryRunDirError::NotEmpty {
                path: path.to_path_buf(),
                count,
            });
        }
        if foreign > 0 {
            return Err(DryRunDirError::Foreign {
                path: path.to_path_buf(),
                count: foreign,
            });
        }
        for body in &bodies {
            std::fs::remove_file(body).map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The body of the `index`th request (0-based) of `job`, in a new owner-only file.
    pub fn write(&self, index: usize, job: &str, body: &[u8]) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let path = self.path.join(format!("{:04}-{job}.json", index + 1));
        reqsync_private_fs::create_new(&path)
            .and_then(|mut file| file.write_all(body))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(path)
    }
}

/// `NNNN-<job>.json`: what [`DryRunDir::write`] names a body.
fn is_body_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".json") else {
        return false;
    };
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    digits >= 4 && stem.as_bytes().get(digits) == Some(&b'-') && stem.len() > digits + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_are_numbered_job_files() {
        assert!(is_body_name("0001-patients.json"));
        assert!(is_body_name("12345-vaccine-doses.json"));
        assert!(!is_body_name("001-patients.json"));
        assert!(!is_body_name("0001-.json"));
        assert!(!is_body_name("0001-patients.txt"));
        assert!(!is_body_name("notes.json"));
    }

    #[test]
    fn a_folder_with_other_files_is_never_emptied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001-patients.json"), "{}").unwrap();
        std::fs::write(dir.path().join("thesis.docx"), "mine").unwrap();
        for replace in [false, true] {
            assert!(DryRunDir::prepare(dir.path(), replace).is_err());
        }
        assert!(dir.path().join("thesis.docx").exists());
        assert!(dir.path().join("0001-patients.json").exists());
    }

    #[test]
    fn earlier_bodies_are_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0001-patients.json"), "{}").unwrap();
        assert!(matches!(
            DryRunDir::prepare(dir.path(), false),
            Err(DryRunDirError::NotEmpty { count: 1, .. })
        ));
        DryRunDir::prepare(dir.path(), true).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
