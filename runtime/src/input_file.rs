//! Reading the files a project names: queries, templates, transform modules, example cases.
//!
//! Each must be a regular file no larger than its kind ever needs. A path pointing elsewhere
//! by mistake or by malice (`/dev/zero`, a FIFO, a folder, a multi-gigabyte export) would
//! otherwise be read until memory runs out, or block for ever; and an error about such a file
//! never quotes its content (it may be a secret, or patient data).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::resource::{FILE_LIMIT_ADVICE, out_of_file_descriptors};

/// What a file is for, and the most it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputKind {
    /// For messages: "query", "template"…
    pub what: &'static str,
    pub max_bytes: u64,
}

const MIB: u64 = 1024 * 1024;

/// A SQL query: the default ones are a few hundred bytes.
pub const QUERY: InputKind = InputKind {
    what: "query",
    max_bytes: MIB,
};
/// A payload template: the default ones are under 2 KiB.
pub(crate) const TEMPLATE: InputKind = InputKind {
    what: "template",
    max_bytes: MIB,
};
/// A transform module: Rust modules are about 0.3 MB, Python and JavaScript ones (an interpreter
/// inside) 12–40 MB.
pub const MODULE: InputKind = InputKind {
    what: "transform module",
    max_bytes: 256 * MIB,
};
/// The config file itself.
pub const CONFIG: InputKind = InputKind {
    what: "config file",
    max_bytes: MIB,
};
/// A PEM file of CA certificates (`ca_file`, `sslrootcert`): a few kilobytes, a whole
/// system bundle about 200 KiB.
pub(crate) const CERTIFICATES: InputKind = InputKind {
    what: "CA certificate file",
    max_bytes: 4 * MIB,
};
/// A password or user name file: a line.
pub const SECRET: InputKind = InputKind {
    what: "secret file",
    max_bytes: 64 * 1024,
};
/// A module's example cases.
pub const EXAMPLES: InputKind = InputKind {
    what: "example cases",
    max_bytes: 16 * MIB,
};

#[derive(Debug, thiserror::Error)]
pub enum InputFileError {
    #[error("cannot read the {what} {}: {reason}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The process or the machine had no file descriptor left: nothing is wrong with the file,
    /// and the fix is not in the config.
    #[error(
        "cannot read the {what} {}: {reason}; {advice}",
        path.display(),
        advice = FILE_LIMIT_ADVICE
    )]
    OutOfFiles {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "the {what} {} is not a regular file (a folder, a device or a pipe); point the setting at \
         the file itself",
        path.display()
    )]
    NotAFile { what: &'static str, path: PathBuf },
    #[error(
        "the {what} {} is larger than {} MiB, far more than any {what} needs; check that the \
         setting names the right file",
        path.display(), max_bytes / MIB
    )]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        max_bytes: u64,
    },
    #[error("the {what} {} is not UTF-8 text (first bad byte at offset {offset})", path.display())]
    NotText {
        what: &'static str,
        path: PathBuf,
        offset: usize,
    },
}

impl InputFileError {
    /// What is wrong, without the path: for errors of callers that name the file themselves.
    pub fn reason(&self) -> String {
        match self {
            InputFileError::Io { reason, .. } => reason.clone(),
            InputFileError::OutOfFiles { reason, .. } => format!("{reason}; {FILE_LIMIT_ADVICE}"),
            InputFileError::NotAFile { .. } => {
                "not a regular file (a folder, a device or a pipe)".into()
            }
            InputFileError::TooLarge {
                what, max_bytes, ..
            } => {
                format!(
                    "larger than {} MiB, far more than any {what} needs",
                    max_bytes / MIB
                )
            }
            InputFileError::NotText { offset, .. } => {
                format!("not UTF-8 text (first bad byte at offset {offset})")
            }
        }
    }
}

/// The whole file, if it is a regular file within `kind`'s size.
pub fn read(path: &Path, kind: InputKind) -> Result<Vec<u8>, InputFileError> {
    let (file, meta) = open(path, kind)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew since `metadata` from one that fits.
    file.take(kind.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, kind, e))?;
    if bytes.len() as u64 > kind.max_bytes {
        return Err(too_large(path, kind));
    }
    Ok(bytes)
}

/// The file opened for reading, with its metadata, if it is a regular file within `kind`'s
/// size (for callers that check more before reading, e.g. who may read a secret file).
pub fn open(
    path: &Path,
    kind: InputKind,
) -> Result<(std::fs::File, std::fs::Metadata), InputFileError> {
    let io = |e: std::io::Error| io_error(path, kind, e);
    let not_a_file = || InputFileError::NotAFile {
        what: kind.what,
        path: path.to_path_buf(),
    };
    // Looked at before opening: opening a FIFO for reading blocks until a writer comes.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_a_file());
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // And again on the handle, in case the path changed in between.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    if meta.len() > kind.max_bytes {
        return Err(too_large(path, kind));
    }
    Ok((file, meta))
}

/// A read of `path` that failed, as an error naming the file and what it is.
pub(crate) fn io_error(path: &Path, kind: InputKind, e: std::io::Error) -> InputFileError {
    let (what, path, reason) = (kind.what, path.to_path_buf(), e.to_string());
    if out_of_file_descriptors(&e) {
        InputFileError::OutOfFiles { what, path, reason }
    } else {
        InputFileError::Io { what, path, reason }
    }
}

fn too_large(path: &Path, kind: InputKind) -> InputFileError {
    InputFileError::TooLarge {
        what: kind.what,
        path: path.to_path_buf(),
        max_bytes: kind.max_bytes,
    }
}

/// [`read`] for a text file.
pub fn read_to_string(path: &Path, kind: InputKind) -> Result<String, InputFileError> {
    String::from_utf8(read(path, kind)?).map_err(|e| InputFileError::NotText {
        what: kind.what,
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Whether `a` and `b` are the same file (through links, `..` or another spelling); false when
/// either cannot be looked at.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    same_file::is_same_file(a, b).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: InputKind = InputKind {
        what: "query",
        max_bytes: 8,
    };

    #[test]
    fn a_regular_file_within_its_size_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sql");
        std::fs::write(&path, "SELECT 1").unwrap();
        assert_eq!(read_to_string(&path, TINY).unwrap(), "SELECT 1");
    }

    #[test]
    fn a_file_larger_than_its_kind_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sql");
        std::fs::write(&path, "SELECT 1 ").unwrap();
        assert!(matches!(
            read(&path, TINY),
            Err(InputFileError::TooLarge { max_bytes: 8, .. })
        ));
    }

    #[test]
    fn folders_and_devices_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path(), TINY),
            Err(InputFileError::NotAFile { .. })
        ));
        #[cfg(unix)]
        assert!(matches!(
            read(Path::new("/dev/zero"), TINY),
            Err(InputFileError::NotAFile { .. })
        ));
    }

    #[test]
    fn text_that_is_not_utf8_is_named_by_offset_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sql");
        std::fs::write(&path, b"Jos\xC3").unwrap();
        let err = read_to_string(&path, TINY).unwrap_err().to_string();
        assert!(err.contains("offset 3") && !err.contains("Jos"), "{err}");
    }

    #[test]
    fn the_same_file_is_recognised_through_another_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "x").unwrap();
        let other = dir.path().join(".").join("pw");
        assert!(same_file(&path, &other));
        assert!(!same_file(&path, &dir.path().join("missing")));
    }
}
