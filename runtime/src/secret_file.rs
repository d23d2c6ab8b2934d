//! Reading a password from a file (`[reqcheck] password_file`, a source URL's
//! `password_file=`), the way ssh treats a private key: the file must be readable by its owner
//! only, or it is refused with the `chmod` that fixes it. A secret other users can read is no
//! longer one, and refusing is the only way the operator finds out.
//!
//! On Windows the file's ACL decides who can read it; nothing is checked there (the docs say
//! how to restrict it).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::input_file::{self, InputFileError};

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Missing, unreadable, not a regular file, or larger than a password file could be.
    #[error(transparent)]
    Input(#[from] InputFileError),
    #[error(
        "refusing the secret file {}: other users can read or write it (mode {mode}). Run \
         `chmod 600 {}` (and keep it owned by the user reqsync runs as)",
        path.display(), path.display()
    )]
    Exposed { path: PathBuf, mode: String },
}

/// The file's text (not trimmed: callers take what their format says, a line or the whole).
pub fn read(path: &Path) -> Result<String, SecretFileError> {
    let (file, meta) = input_file::open(path, input_file::SECRET)?;
    if reqsync_private_fs::readable_by_others(&meta)
        || reqsync_private_fs::writable_by_others(&meta)
    {
        return Err(SecretFileError::Exposed {
            path: path.to_path_buf(),
            mode: reqsync_private_fs::mode_text(&meta),
        });
    }
    let mut text = String::new();
    file.take(input_file::SECRET.max_bytes)
        .read_to_string(&mut text)
        .map_err(|e| input_file::io_error(path, input_file::SECRET, e))?;
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
            Err(SecretFileError::Input(InputFileError::NotAFile { .. }))
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(SecretFileError::Input(InputFileError::NotAFile { .. }))
        ));
    }
}
