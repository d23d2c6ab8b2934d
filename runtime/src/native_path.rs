//! Paths spelled the platform's way. A config written on Linux says `transforms/patients.wasm`;
//! on Windows, joined to `C:\ProgramData\reqsync`, that would print as
//! `C:\ProgramData\reqsync\transforms/patients.wasm` in every message, log line and audit entry.
//! Windows accepts either separator, so rebuilding the path from its components changes nothing
//! it opens, only how it reads.

use std::path::{Path, PathBuf};

/// `path` with the platform's separator throughout (and `.` components dropped).
pub fn native(path: &Path) -> PathBuf {
    path.components().collect()
}

/// `relative` under `base` (unless absolute), spelled the platform's way.
pub(crate) fn resolve(base: &Path, relative: &Path) -> PathBuf {
    if relative.is_relative() {
        native(&base.join(relative))
    } else {
        native(relative)
    }
}

/// `%ProgramData%\reqsync`: machine-wide data on Windows, where the MSI puts the config and a
/// service or scheduled task keeps its state and logs (not a user's profile, which a service
/// account may not have).
pub fn program_data_dir() -> PathBuf {
    std::env::var_os("ProgramData")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("reqsync")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_relative_paths_are_joined_under_the_config_folder() {
        let base = Path::new("proj");
        let joined = resolve(base, Path::new("transforms/patients.wasm"));
        assert_eq!(
            joined,
            Path::new("proj").join("transforms").join("patients.wasm")
        );
        assert_eq!(
            resolve(base, Path::new("./queries/./p.sql")),
            base.join("queries").join("p.sql")
        );
    }

    #[cfg(unix)]
    #[test]
    fn absolute_paths_are_kept() {
        assert_eq!(
            resolve(Path::new("proj"), Path::new("/etc/q.sql")),
            Path::new("/etc/q.sql")
        );
    }

    /// Windows: one separator style in every message (`C:\proj\transforms\patients.wasm`, not
    /// `C:\proj\transforms/patients.wasm`).
    #[cfg(windows)]
    #[test]
    fn windows_paths_print_with_backslashes_only() {
        let joined = resolve(Path::new(r"C:\proj"), Path::new("transforms/patients.wasm"));
        assert_eq!(
            joined.display().to_string(),
            r"C:\proj\transforms\patients.wasm"
        );
        let absolute = resolve(Path::new(r"C:\proj"), Path::new("D:/data/q.sql"));
        assert_eq!(absolute.display().to_string(), r"D:\data\q.sql");
        let unc = native(Path::new(r"\\server\share/reqsync/q.sql"));
        assert_eq!(unc.display().to_string(), r"\\server\share\reqsync\q.sql");
    }
}
