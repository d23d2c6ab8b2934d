//! The compiled-module cache: part of the engine's policy ([`super::engine`] is its only user).
//!
//! A cache entry is native code that wasmtime maps and runs without checking it, outside the
//! sandbox. The folder alone cannot be trusted to hold only what reqsync put there: a file
//! copied over another entry (the dose module's code under the patients module's name) would
//! run while every report still showed the patients module's hash. So each entry carries an
//! HMAC-SHA256 over what it is for (the module file's SHA-256, the engine's fingerprint) and
//! the compiled code, keyed by a secret kept owner-only *outside* the cache folder (in the
//! state folder, or the user's own state folder for the `transform` commands). An entry whose
//! tag does not verify is discarded and the module compiled again: being able to write the
//! cache folder is not enough to make reqsync run code.
//!
//! A cache folder that other users can write is refused outright, as is a key file others can
//! read or write.

use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::hmac;

use reqsync_private_fs as private_fs;

/// Written after the tag, so that an entry of another format (or a truncated one) is told apart
/// from a tampered one.
const TRAILER_MAGIC: &[u8; 8] = b"RQSMAC01";
const TAG_LEN: usize = 32;
/// Binds the tag to this use of the key.
const DOMAIN: &[u8] = b"reqsync compiled-module cache entry v1\0";
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot use the module cache folder {}: {reason}", path.display())]
    Folder { path: PathBuf, reason: String },
    #[error(
        "refusing the module cache folder {}: {reason}. Cached modules are native code run \
         outside the sandbox, so only reqsync's own user may write there (e.g. `chmod 700 {}`, \
         or point `[sync] cache_dir` at a folder of its own)",
        path.display(), path.display()
    )]
    InsecureFolder { path: PathBuf, reason: String },
    #[error("cannot use the module cache key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error(
        "refusing the module cache key {}: {reason}. Delete it (a new one is made and every \
         module compiled once more), and keep its folder to reqsync's own user",
        path.display()
    )]
    InsecureKey { path: PathBuf, reason: String },
}

/// A cache folder and the key its entries are tagged with.
#[derive(Clone)]
pub struct ModuleCache {
    dir: PathBuf,
    key: hmac::Key,
    /// Names this key in entry file names: projects sharing a folder keep entries of their own
    /// instead of discarding each other's.
    key_id: String,
}

impl std::fmt::Debug for ModuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCache")
            .field("dir", &self.dir)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl ModuleCache {
    /// Opens (creating owner-only if missing) the cache folder `dir` and the key in `key_file`
    /// (a new random key when missing).
    pub fn open(dir: &Path, key_file: &Path) -> Result<Self, CacheError> {
        check_folder(dir)?;
        let secret = load_or_create_key(key_file)?;
        let key_id = hex::encode(hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            b"reqsync module cache key id",
        ))[..16]
            .to_string();
        Ok(Self {
            dir: dir.to_path_buf(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            key_id,
        })
    }

    /// The compiled code cached for the module whose file hashes to `module_sha256`, when an
    /// entry exists and its tag verifies. A bad entry is removed, with one warning saying why.
    pub fn lookup(&self, module_sha256: &str, fingerprint: &str) -> Option<Vec<u8>> {
        let path = self.entry_path(module_sha256, fingerprint);
        let mut bytes = read_entry(&path)?;
        match self.verify(module_sha256, fingerprint, &bytes) {
            Ok(len) => {
                bytes.truncate(len);
                Some(bytes)
            }
            Err(why) => {
                tracing::warn!(
                    cache_entry = %path.display(),
                    module_sha256,
                    reason = why,
                    "discarding a compiled-module cache entry and compiling the module again"
                );
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Caches `artifact`, the compiled code of the module hashing to `module_sha256`. A failure
    /// is logged: the module is compiled, only the next start is slower.
    pub fn store(&self, module_sha256: &str, fingerprint: &str, artifact: &[u8]) {
        let mut entry = Vec::with_capacity(artifact.len() + TAG_LEN + TRAILER_MAGIC.len());
        entry.extend_from_slice(artifact);
        entry.extend_from_slice(self.tag(module_sha256, fingerprint, artifact).as_ref());
        entry.extend_from_slice(TRAILER_MAGIC);
        let path = self.entry_path(module_sha256, fingerprint);
        if let Err(e) = private_fs::write_atomically(&path, &entry) {
            tracing::warn!(cache = %self.dir.display(), error = %e, "cannot write the module cache; continuing without it");
        }
    }

    fn entry_path(&self, module_sha256: &str, fingerprint: &str) -> PathBuf {
        self.dir.join(format!(
            "{module_sha256}-{fingerprint}-{}.cwasm",
            self.key_id
        ))
    }

    fn tag(&self, module_sha256: &str, fingerprint: &str, artifact: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(DOMAIN);
        ctx.update(module_sha256.as_bytes());
        ctx.update(b"\0");
        ctx.update(fingerprint.as_bytes());
        ctx.update(b"\0");
        ctx.update(artifact);
        ctx.sign()
    }

    /// The length of the compiled code in `entry` when its tag verifies, else why not.
    fn verify(
        &self,
        module_sha256: &str,
        fingerprint: &str,
        entry: &[u8],
    ) -> Result<usize, &'static str> {
        let Some(body_len) = entry.len().checked_sub(TAG_LEN + TRAILER_MAGIC.len()) else {
            return Err("the entry is too short to carry a tag");
        };
        if &entry[body_len + TAG_LEN..] != TRAILER_MAGIC {
            return Err(
                "the entry carries no tag (written by an older reqsync, or not by reqsync)",
            );
        }
        let (artifact, tag) = (&entry[..body_len], &entry[body_len..body_len + TAG_LEN]);
        let expected = self.tag(module_sha256, fingerprint, artifact);
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), tag)
            .map(|()| body_len)
            .map_err(|_| {
                "its tag does not match the module it is filed under (copied from another \
                 module's entry, altered, or written under another key)"
            })
    }
}

/// Reads an entry, refusing anything that is not a regular file (a link, a device that never
/// ends). A missing entry is `None` without a word.
fn read_entry(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!(cache_entry = %path.display(), "ignoring a module cache entry that is not a regular file");
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    let read = std::fs::File::open(path).and_then(|f| f.take(meta.len()).read_to_end(&mut bytes));
    match read {
        Ok(_) => Some(bytes),
        Err(e) => {
            tracing::warn!(cache_entry = %path.display(), error = %e, "cannot read a module cache entry; compiling the module again");
            None
        }
    }
}

/// Creates the folder owner-only when missing; refuses an existing one that is not a folder or
/// that other users can write.
fn check_folder(dir: &Path) -> Result<(), CacheError> {
    let folder_error = |reason: String| CacheError::Folder {
        path: dir.to_path_buf(),
        reason,
    };
    if let Err(e) = private_fs::create_dir_all(dir) {
        return Err(folder_error(e.to_string()));
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| folder_error(e.to_string()))?;
    let insecure = |reason: String| CacheError::InsecureFolder {
        path: dir.to_path_buf(),
        reason,
    };
    if meta.file_type().is_symlink() {
        return Err(insecure("it is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(folder_error("it is not a folder".into()));
    }
    if !private_fs::owned_by_me(&meta) {
        return Err(insecure("it belongs to another user".into()));
    }
    if private_fs::writable_by_others(&meta) {
        return Err(insecure(format!(
            "other users can write it (mode {})",
            private_fs::mode_text(&meta)
        )));
    }
    Ok(())
}

/// The key in `path`, or a new random one written there owner-only. An existing key others can
/// read or write, or that is not one, is refused.
fn load_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], CacheError> {
    let key_error = |reason: String| CacheError::Key {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => read_key(path, &meta),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                private_fs::create_dir_all(dir).map_err(|e| key_error(e.to_string()))?;
            }
            let mut key = [0u8; KEY_LEN];
            aws_lc_rs::rand::fill(&mut key).map_err(|_| key_error("no randomness".into()))?;
            let text = hex::encode(key);
            match private_fs::write_new(path, |w| writeln!(w, "{text}")) {
                Ok(()) => Ok(key),
                // Another process made it meanwhile: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let meta =
                        std::fs::symlink_metadata(path).map_err(|e| key_error(e.to_string()))?;
                    read_key(path, &meta)
                }
                Err(e) => Err(key_error(e.to_string())),
            }
        }
        Err(e) => Err(key_error(e.to_string())),
    }
}

fn read_key(path: &Path, meta: &std::fs::Metadata) -> Result<[u8; KEY_LEN], CacheError> {
    let insecure = |reason: String| CacheError::InsecureKey {
        path: path.to_path_buf(),
        reason,
    };
    if !meta.is_file() {
        return Err(insecure("it is not a regular file".into()));
    }
    if !private_fs::owned_by_me(meta) {
        return Err(insecure("it belongs to another user".into()));
    }
    if private_fs::readable_by_others(meta) || private_fs::writable_by_others(meta) {
        return Err(insecure(format!(
            "other users can read or write it (mode {})",
            private_fs::mode_text(meta)
        )));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4 * KEY_LEN as u64).read_to_string(&mut text))
        .map_err(|e| CacheError::Key {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut key = [0u8; KEY_LEN];
    hex::decode_to_slice(text.trim_end(), &mut key)
        .map_err(|_| insecure("it does not hold a key (64 hexadecimal digits)".into()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path) -> ModuleCache {
        ModuleCache::open(&dir.join("cache"), &dir.join("state/module-cache.key")).unwrap()
    }

    #[test]
    fn an_entry_reads_back_only_under_the_module_it_was_stored_for() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path());
        cache.store("aaaa", "fp", b"patients code");
        cache.store("bbbb", "fp", b"dose code");
        assert_eq!(cache.lookup("aaaa", "fp").unwrap(), b"patients code");
        // The dose module's entry copied over the patients module's.
        std::fs::copy(
            cache.entry_path("bbbb", "fp"),
            cache.entry_path("aaaa", "fp"),
        )
        .unwrap();
        assert_eq!(cache.lookup("aaaa", "fp"), None);
        assert!(
            !cache.entry_path("aaaa", "fp").exists(),
            "the bad entry is removed"
        );
        assert_eq!(cache.lookup("bbbb", "fp").unwrap(), b"dose code");
    }

    #[test]
    fn an_altered_or_untagged_entry_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path());
        cache.store("aaaa", "fp", b"patients code");
        let path = cache.entry_path("aaaa", "fp");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.lookup("aaaa", "fp"), None);
        std::fs::write(&path, b"raw code as an older reqsync wrote it").unwrap();
        assert_eq!(cache.lookup("aaaa", "fp"), None);
    }

    #[test]
    fn a_cache_under_another_key_does_not_verify_and_does_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let ours = cache(dir.path());
        let theirs =
            ModuleCache::open(&dir.path().join("cache"), &dir.path().join("other.key")).unwrap();
        assert_ne!(ours.key_id, theirs.key_id);
        theirs.store("aaaa", "fp", b"their code");
        assert_eq!(ours.lookup("aaaa", "fp"), None);
        std::fs::copy(
            theirs.entry_path("aaaa", "fp"),
            ours.entry_path("aaaa", "fp"),
        )
        .unwrap();
        assert_eq!(ours.lookup("aaaa", "fp"), None);
    }

    #[test]
    fn the_key_persists_and_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("state/module-cache.key");
        let first = cache(dir.path());
        first.store("aaaa", "fp", b"code");
        let second = cache(dir.path());
        assert_eq!(second.lookup("aaaa", "fp").unwrap(), b"code");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&key, "not a key\n").unwrap();
        assert!(matches!(
            ModuleCache::open(&dir.path().join("cache"), &key),
            Err(CacheError::InsecureKey { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_or_key_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        let key = dir.path().join("module-cache.key");
        ModuleCache::open(&folder, &key).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            ModuleCache::open(&folder, &key),
            Err(CacheError::InsecureFolder { .. })
        ));
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        ModuleCache::open(&folder, &key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ModuleCache::open(&folder, &key),
            Err(CacheError::InsecureKey { .. })
        ));
    }
}
