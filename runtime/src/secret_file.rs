//! Reading a password from a file (`[reqcheck] password_file`, a source URL's
//! `password_file=`), the way ssh treats a private key: the file must be readable by its owner
//! only, or it is refused with the `chmod` that fixes it. A secret other users can read is no
//! longer one, and refusing is the only way the operator finds out.
//!
//! On Windows the file's ACL decides who can read it; nothing is checked there (the docs say
//! how to restrict it).

use std::io::Read;
use std::path::{Path, PathBuf};

/// A password is a line; anything longer than this is not a password file.
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the secret file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error(
        "refusing the secret file {}: other users can read or write it (mode {mode}). Run \
         `chmod 600 {}` (and keep it owned by the user reqsync runs as)",
        path.display(), path.display()
    )]
    Exposed { path: PathBuf, mode: String },
    #[error(
        "the secret file {} is not a regular file, or is larger than a password file could be",
        path.display()
    )]
    NotASecret { path: PathBuf },
}

/// The file's text (not trimmed: callers take what their format says, a line or the whole).
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    let read_error = |e: std::io::Error| SecretFileError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let not_a_secret = || SecretFileError::NotASecret {
        path: path.to_path_buf(),
    };
    // Before opening: opening a FIFO blocks until someone writes to it.
    if !std::fs::metadata(path).map_err(read_error)?.is_file() {
        return Err(not_a_secret());
    }
    let file = std::fs::File::open(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err(not_a_secret());
    }
    if crate::private_fs::readable_by_others(&meta) || crate::private_fs::writable_by_others(&meta)
    {
        return Err(SecretFileError::Exposed {
            path: path.to_path_buf(),
            mode: crate::private_fs::mode_text(&meta),
        });
    }
    let mut text = String::new();
    file.take(MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    Ok(text)
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn secret(mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn an_owner_only_file_is_read_whole() {
        let (_dir, path) = secret(0o600);
        assert_eq!(read(&path).unwrap(), "s3cret\n");
        let (_dir, path) = secret(0o400);
        assert!(read(&path).is_ok());
    }

    #[test]
    fn a_file_others_can_read_is_refused_with_the_fix_and_without_the_secret() {
        for mode in [0o644, 0o640, 0o604, 0o620] {
            let (_dir, path) = secret(mode);
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn devices_and_folders_are_not_secret_files() {
        assert!(matches!(
            read(Path::new("/dev/zero")),
            Err(SecretFileError::NotASecret { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(SecretFileError::NotASecret { .. })
        ));
    }
}
