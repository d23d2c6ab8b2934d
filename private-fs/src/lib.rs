//! Creating the files and folders reqsync keeps for itself: the run ledger, run reports, the
//! audit trail, the compiled-module cache and its key, dry-run bodies, the development
//! receiver's database. They hold patient numbers (identifiers under HIPAA), patient data or
//! keys, so every one is created **owner-only from the start** (files 0600, folders 0700 on
//! Unix, whatever the umask), never chmod-ed afterwards: a file created 0644 and tightened a
//! moment later can be opened by another user in between, and that handle stays good.
//!
//! Creating never follows a symbolic link: a link planted where a file is about to be written
//! (a shared folder, a dry-run output folder) would otherwise make reqsync overwrite the link's
//! target with patient data.
//!
//! On Windows the folders reqsync creates get an owner-only ACL (SYSTEM, Administrators and
//! the owner; `windows_acl`), which the files created inside inherit; folders that already
//! exist keep theirs (SECURITY.md says how to restrict them). Links are refused there by
//! looking before opening.

#[cfg(windows)]
pub mod windows_acl;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Creates `path` and any missing parents; folders it creates are owner-only. Folders that
/// already exist are left as they are (the operator's choice), but must be folders: a link
/// where a folder is expected is refused like any link.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        create_dir_all_windows(path)
    }
    #[cfg(not(windows))]
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path)
    }
}

/// Windows: each missing folder created with an owner-only ACL (`windows_acl`), outermost
/// first, as `DirBuilder::recursive` would.
#[cfg(windows)]
fn create_dir_all_windows(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dir_all_windows(parent)?;
    }
    match crate::windows_acl::create_private_dir(path) {
        Ok(()) => Ok(()),
        // Created meanwhile by another process: fine, if it is a folder.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a new file, owner-only; fails with `AlreadyExists` when anything (a file, a link, a
/// dangling link) is already at `path`, so nothing is ever overwritten or followed.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    owner_only(&mut options);
    options.open(path)
}

/// Opens `path` for reading and appending, creating it owner-only if missing. A link at `path`
/// is refused (`ELOOP` on Unix).
pub fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    open_no_follow(path, &mut options)
}

/// Opens `path` for reading and writing without truncating it, creating it owner-only if
/// missing (a lock file). A link at `path` is refused.
pub fn open_read_write(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    open_no_follow(path, &mut options)
}

/// Writes `bytes` to `dest` all at once: into a new owner-only file beside it, flushed, then
/// renamed over `dest`. A reader sees the old content or the new, never half of it, and a link
/// at `dest` is replaced, not followed.
pub fn write_atomically(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_sibling(dest)?;
    let written = create_new(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_data()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, dest));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Writes a file that must not exist yet (a run report: created, never overwritten) with
/// `write`, through a buffer. The file appears whole: written beside it first, then linked into
/// place, which fails with `AlreadyExists` if anything is at `dest` by then.
pub fn write_new(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary_sibling(dest)?;
    let written = create_new(&tmp).and_then(|file| {
        let mut out = io::BufWriter::new(file);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_data()
    });
    let linked = written.and_then(|()| link_into_place(&tmp, dest));
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// Gives the complete file `tmp` the name `dest`, unless something is there already
/// (`AlreadyExists`). A hard link does that in one step; on a file system without them (FAT,
/// some network shares) the file is renamed after a look, which leaves a moment in which a file
/// appearing at `dest` would be replaced. `tmp` may remain; the caller removes it.
pub fn link_into_place(tmp: &Path, dest: &Path) -> io::Result<()> {
    match std::fs::hard_link(tmp, dest) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            if std::fs::symlink_metadata(dest).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(tmp, dest)
        }
        linked => linked,
    }
}

/// Makes sure an SQLite database file exists owner-only before SQLite opens it: SQLite creates
/// a missing database with 0644, and gives its journal and WAL files the database file's
/// permissions, so creating the (empty) file first keeps all of them private.
pub fn precreate_sqlite(path: &Path) -> io::Result<()> {
    match create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether users other than the owner can write into `meta`'s folder or file (group or
/// others write bit; on Windows, where ACLs decide, nothing is known from the metadata).
pub fn writable_by_others(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o022 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Whether users other than the owner can read `meta`'s file (group or others read bit).
pub fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o044 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Whether `meta` belongs to the user this process runs as (always true where unknown).
pub fn owned_by_me(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.uid() == rustix::process::geteuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

/// `0644`-style permission bits, for messages (empty where the platform has none).
pub fn mode_text(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        format!("{:o}", meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        String::new()
    }
}

fn owner_only(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

fn open_no_follow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    owner_only(options);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    #[cfg(not(unix))]
    {
        // No O_NOFOLLOW: look first. Creating a link on Windows needs a privilege ordinary
        // users lack by default, which narrows the window this leaves.
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(link_refused(path));
        }
    }
    let opened = options.open(path);
    // O_NOFOLLOW fails with ELOOP, "too many levels of symbolic links": not what happened.
    #[cfg(unix)]
    let opened = opened.map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            link_refused(path)
        } else {
            e
        }
    });
    opened
}

fn link_refused(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; reqsync does not write through links (point the setting at \
         the file itself)",
        path.display()
    ))
}

/// A name beside `dest` no other writer uses: `.<name>.<pid>-<nanos>.tmp`.
pub fn temporary_sibling(dest: &Path) -> io::Result<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} names no file", dest.display())))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Ok(dest.with_file_name(format!(
        ".{}.{}-{nanos}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn files_and_folders_are_owner_only_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        create_new(&nested.join("new")).unwrap();
        open_append(&nested.join("append")).unwrap();
        open_read_write(&nested.join("rw")).unwrap();
        write_atomically(&nested.join("atomic"), b"x").unwrap();
        write_new(&nested.join("once"), |w| w.write_all(b"x")).unwrap();
        precreate_sqlite(&nested.join("db")).unwrap();
        for name in ["new", "append", "rw", "atomic", "once", "db"] {
            assert_eq!(mode(&nested.join(name)), 0o600, "{name}");
        }
    }

    #[test]
    fn a_link_where_a_file_is_written_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        assert_eq!(
            create_new(&link).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let refused = open_append(&link).expect_err("a link is refused");
        assert!(
            refused.to_string().contains("is a symbolic link"),
            "{refused}"
        );
        assert!(open_read_write(&link).is_err());
        assert!(write_new(&link, |w| w.write_all(b"phi")).is_err());
        // Replaced, not written through.
        write_atomically(&link, b"phi").unwrap();
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn write_new_never_overwrites_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("report.json");
        write_new(&dest, |w| w.write_all(b"first")).unwrap();
        assert_eq!(
            write_new(&dest, |w| w.write_all(b"second"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"first");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn permission_checks_read_the_mode_bits() {
        let dir = tempfile::tempdir().unwrap();
        let meta = |m: u32| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(m)).unwrap();
            std::fs::metadata(dir.path()).unwrap()
        };
        assert!(!writable_by_others(&meta(0o755)));
        assert!(writable_by_others(&meta(0o775)));
        assert!(writable_by_others(&meta(0o1777)));
        assert!(readable_by_others(&meta(0o750)));
        assert!(!readable_by_others(&meta(0o700)));
        assert!(owned_by_me(&meta(0o700)));
        assert_eq!(mode_text(&meta(0o700)), "700");
    }
}
