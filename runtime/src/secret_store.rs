//! Named secrets: `password_secret = "reqcheck"` in the config instead of a password in the
//! service's environment or in a plain file somewhere.
//!
//! A scheduled task or a service should not need its passwords in its environment (which
//! other tools print, inherit and dump) or in a file whose protection nobody checks. A secret
//! named `NAME` is looked up, in this order:
//!
//! 1. **`$CREDENTIALS_DIRECTORY/NAME`**, when that variable is set: systemd's credentials
//!    (`LoadCredential=NAME:/etc/...` or `LoadCredentialEncrypted=NAME:...` in the unit). systemd
//!    decrypts them when the service starts into a folder on a non-swappable file system that
//!    only the service's user can read, so the folder *is* the protection: the owner-only check
//!    of the store below is not applied there (systemd's files are typically owned by root and
//!    readable by the service's user through an ACL, which shows as a group read bit that the
//!    owner-only check would refuse). When the variable is set, the store below is not consulted
//!    at all: a unit that hands reqsync credentials hands it all of them, and falling back to a
//!    forgotten store file would hide a missing `LoadCredential=` line.
//! 2. **The store folder** (`[secrets] dir` in the config, by default `secrets` beside the
//!    config file), as `reqsync secret set NAME` writes it:
//!    - on Unix, the file `NAME`, which must be readable by its owner only, like a
//!      `password_file` (see [`crate::secret_file`]);
//!    - on Windows, the file `NAME.dpapi`: the secret encrypted with DPAPI, by default for the
//!      machine (any account on this machine may decrypt it, so a service account can use what
//!      an administrator stored, but a copy of the file is useless elsewhere), or for the user
//!      who stored it (`--scope user`: only that account can decrypt it). Its ACL lets SYSTEM,
//!      Administrators, the file's owner and the named readers (by default the service's
//!      virtual account and NETWORK SERVICE) read it, and nobody else.
//!
//! The value loses one trailing line ending (how editors and `echo` end a file) and may not be
//! empty. It is only ever held as a [`Secret`], which formats as `***`: no error of this module
//! carries the value, only the secret's name and where it was looked for.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::input_file;
use crate::reqcheck::Secret;
use crate::secret_file::SecretFileError;

#[cfg(any(windows, test))]
#[cfg(windows)]
mod windows;

/// The environment variable systemd sets for a service with credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// The store folder's name beside the config file, unless `[secrets] dir` says otherwise.
pub(crate) const DEFAULT_DIR: &str = "secrets";

/// The longest secret name: a file name on every file system, with room for `.dpapi`.
const MAX_NAME_LEN: usize = 128;

/// The name of a secret: `[A-Za-z0-9_.-]+`, not starting with `.`.
///
/// The name becomes a file name in the store folder and in systemd's credentials folder, so it
/// can hold nothing that leaves the folder or means something to a file system: no separators,
/// no `..`, no leading dot (hidden files, and the store's own temporary files), and none of the
/// device names Windows reserves in every folder (`NUL`, `COM1`…), so that a config written on
/// Linux works on Windows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretNameError {
    /// The refused name is not quoted: a name with characters no name has is more likely the
    /// password itself, typed where its name should be.
    #[error(
        "not a secret name: use letters, digits, `-`, `_` and `.` (not first), at most \
         {MAX_NAME_LEN} characters, e.g. \"reqcheck\" (the name of the secret, not the secret: \
         store the secret itself with `reqsync secret set NAME`)"
    )]
    Invalid,
    #[error("`{0}` is a device name on Windows and cannot be a file name there; choose another")]
    Reserved(String),
}

impl SecretName {
    pub fn parse(name: &str) -> Result<Self, SecretNameError> {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || name.starts_with('.')
            || !name.chars().all(plain)
        {
            return Err(SecretNameError::Invalid);
        }
        // Windows treats `NUL` and `NUL.anything` as the device, in any folder and any case.
        let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
        let numbered = |prefix: &str| {
            stem.strip_prefix(prefix)
                .is_some_and(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit())
        };
        if matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
            || numbered("COM")
            || numbered("LPT")
        {
            return Err(SecretNameError::Reserved(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SecretName {
    type Err = SecretNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Who may decrypt a secret stored on Windows (DPAPI's scope). Unix has no such choice: the
/// file's owner reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Any account on this machine (`CRYPTPROTECT_LOCAL_MACHINE`); the file's ACL decides who
    /// can read the blob. A copy of the file taken to another machine cannot be decrypted.
    #[default]
    Machine,
    /// Only the account that stored it, on this machine.
    User,
}

/// Where a secret was (or would be) read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `$CREDENTIALS_DIRECTORY/NAME`, from systemd.
    CredentialsDirectory(PathBuf),
    /// The store's file.
    Store(PathBuf),
}

impl Location {
    pub fn path(&self) -> &Path {
        match self {
            Location::CredentialsDirectory(path) | Location::Store(path) => path,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::CredentialsDirectory(path) => {
                write!(f, "{} (systemd's $CREDENTIALS_DIRECTORY)", path.display())
            }
            Location::Store(path) => write!(f, "{} (the secret store)", path.display()),
        }
    }
}

/// A secret that was read, and where from.
#[derive(Debug, Clone)]
pub struct Found {
    pub secret: Secret,
    pub location: Location,
}

/// How `reqsync secret set` stores a secret.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Windows: who can decrypt it.
    pub scope: Scope,
    /// Windows: the accounts (besides SYSTEM, Administrators and the file's owner) that may
    /// read the file; `None`: the service's virtual account (`NT SERVICE\reqsync`) and
    /// `NETWORK SERVICE`, what `reqsync service install` and `reqsync schedule install` run as.
    pub readers: Option<Vec<String>>,
}

/// What a write did besides writing (for the command to report).
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub path: PathBuf,
    /// Windows: the accounts given read access (as given, or the defaults).
    pub readers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    #[error(
        "the secret `{name}` is not stored ({} does not exist): store it with `reqsync secret \
         set {name}` (with `--config` naming this config file), as the account that runs \
         reqsync{}",
        path.display(),
        if cfg!(windows) { " or with the default `--scope machine`" } else { "" }
    )]
    Missing { name: SecretName, path: PathBuf },
    #[error(
        "the secret `{name}` is not among systemd's credentials ({} does not exist, and \
         $CREDENTIALS_DIRECTORY is set, so the secret store is not consulted): add \
         `LoadCredential={name}:/path/to/file` or `LoadCredentialEncrypted={name}:…` to the \
         service unit, or run reqsync without systemd credentials and store it with `reqsync \
         secret set {name}`",
        path.display()
    )]
    NotInCredentialsDirectory { name: SecretName, path: PathBuf },
    /// Unreadable, not a regular file, too large, or (Unix) readable by others: the message
    /// names the file and, for the last, the `chmod` that fixes it.
    #[error(transparent)]
    File(#[from] SecretFileError),
    #[error("the secret `{name}` ({}) is empty", location)]
    Empty {
        name: SecretName,
        location: Location,
    },
    #[error("the secret `{name}` ({}) is not UTF-8 text", location)]
    NotText {
        name: SecretName,
        location: Location,
    },
    #[error(
        "this account may not read the secret file {} (access denied): store the secret again \
         with `reqsync secret set {name} --reader ACCOUNT` naming the account that runs \
         reqsync (by default the service's `NT SERVICE\\reqsync` and `NETWORK SERVICE` may \
         read it), as an administrator",
        path.display()
    )]
    Denied { name: SecretName, path: PathBuf },
    #[error(
        "cannot decrypt the secret file {} ({reason}): it was stored with `--scope user` by \
         another account, or on another machine (DPAPI blobs only open where they were made). \
         Store it again on this machine with `reqsync secret set {name}`, as the account that \
         runs reqsync or with `--scope machine`",
        path.display()
    )]
    Undecryptable {
        name: SecretName,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot encrypt the secret `{name}`: {reason}")]
    Encrypt { name: SecretName, reason: String },
    #[error("cannot write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error(
        "refusing the secret store {}: other users can write into it (mode {mode}), and so \
         replace a secret. Run `chmod 700 {}`",
        path.display(), path.display()
    )]
    ExposedFolder { path: PathBuf, mode: String },
    #[error("cannot resolve the account `{account}`: {reason}")]
    Account { account: String, reason: String },
    #[error("`--scope` and `--reader` only mean something on Windows (DPAPI and ACLs)")]
    WindowsOnly,
}

/// The folder `reqsync secret set` writes secrets into (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretStore {
    dir: PathBuf,
}

/// A secret named in the config: its name and the store it is looked up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: SecretName,
    pub store: SecretStore,
}

impl SecretRef {
    /// Reads the secret (see [`SecretStore::read`]).
    pub fn read(&self) -> Result<Found, SecretStoreError> {
        self.store.read(&self.name)
    }
}

impl SecretStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The default store of a config in `config_dir`: `secrets` beside it.
    pub fn beside_config(config_dir: &Path) -> Self {
        Self::new(crate::native_path::resolve(
            config_dir,
            Path::new(DEFAULT_DIR),
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's file for `name`: `NAME` on Unix, `NAME.dpapi` on Windows (a different name,
    /// so that a plain file copied from a Linux machine is never taken for a DPAPI blob).
    pub fn file(&self, name: &SecretName) -> PathBuf {
        if cfg!(windows) {
            self.dir.join(format!("{name}.dpapi"))
        } else {
            self.dir.join(name.as_str())
        }
    }

    /// Where `name` is read from, given this process's environment.
    pub fn locate(&self, name: &SecretName) -> Location {
        self.locate_with(name, std::env::var_os(CREDENTIALS_DIRECTORY))
    }

    /// Where `name` is read from when `$CREDENTIALS_DIRECTORY` is `credentials_directory`.
    pub(crate) fn locate_with(
        &self,
        name: &SecretName,
        credentials_directory: Option<OsString>,
    ) -> Location {
        match credentials_directory.filter(|dir| !dir.is_empty()) {
            Some(dir) => Location::CredentialsDirectory(PathBuf::from(dir).join(name.as_str())),
            None => Location::Store(self.file(name)),
        }
    }

    /// Reads `name`: from systemd's credentials when `$CREDENTIALS_DIRECTORY` is set, else
    /// from the store.
    pub fn read(&self, name: &SecretName) -> Result<Found, SecretStoreError> {
        self.read_at(name, self.locate(name))
    }

    /// Reads `name` from `location` (one of [`Self::locate_with`]'s answers).
    pub fn read_at(
        &self,
        name: &SecretName,
        location: Location,
    ) -> Result<Found, SecretStoreError> {
        let path = location.path();
        let exists = std::fs::symlink_metadata(path).is_ok();
        let bytes = match &location {
            Location::CredentialsDirectory(path) => {
                if !exists {
                    return Err(SecretStoreError::NotInCredentialsDirectory {
                        name: name.clone(),
                        path: path.clone(),
                    });
                }
                input_file::read(path, input_file::SECRET).map_err(SecretFileError::Input)?
            }
            Location::Store(path) => {
                if !exists {
                    return Err(SecretStoreError::Missing {
                        name: name.clone(),
                        path: path.clone(),
                    });
                }
                read_store_file(name, path)?
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| SecretStoreError::NotText {
            name: name.clone(),
            location: location.clone(),
        })?;
        let value = strip_line_ending(text);
        if value.is_empty() {
            return Err(SecretStoreError::Empty {
                name: name.clone(),
                location,
            });
        }
        Ok(Found {
            secret: Secret::new(value),
            location,
        })
    }

    /// Stores `value` as `name`, replacing any previous value at once (readers see the old
    /// secret or the new one). Creates the store folder, owner-only, if missing.
    pub fn write(
        &self,
        name: &SecretName,
        value: &Secret,
        options: &WriteOptions,
    ) -> Result<Written, SecretStoreError> {
        if value.expose().is_empty() {
            return Err(SecretStoreError::Empty {
                name: name.clone(),
                location: Location::Store(self.file(name)),
            });
        }
        let write_error = |path: &Path, e: std::io::Error| SecretStoreError::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        reqsync_private_fs::create_dir_all(&self.dir).map_err(|e| write_error(&self.dir, e))?;
        let path = self.file(name);
        #[cfg(windows)]
        {
            let readers = windows::write(name, &path, value, options)?;
            Ok(Written { path, readers })
        }
        #[cfg(not(windows))]
        {
            if options.scope != Scope::default() || options.readers.is_some() {
                return Err(SecretStoreError::WindowsOnly);
            }
            // An existing folder others can write into lets them swap a secret for their own
            // (ReqCheck would then be sent their password, or the source asked with it).
            let meta = std::fs::metadata(&self.dir).map_err(|e| write_error(&self.dir, e))?;
            if reqsync_private_fs::writable_by_others(&meta) {
                return Err(SecretStoreError::ExposedFolder {
                    path: self.dir.clone(),
                    mode: reqsync_private_fs::mode_text(&meta),
                });
            }
            let mut bytes = value.expose().as_bytes().to_vec();
            bytes.push(b'\n');
            let written = reqsync_private_fs::write_atomically(&path, &bytes);
            bytes.fill(0);
            written.map_err(|e| write_error(&path, e))?;
            Ok(Written {
                path,
                readers: Vec::new(),
            })
        }
    }

    /// Deletes `name` from the store; [`SecretStoreError::Missing`] if it is not there.
    pub fn remove(&self, name: &SecretName) -> Result<PathBuf, SecretStoreError> {
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretStoreError::Missing {
                name: name.clone(),
                path,
            }),
            Err(e) => Err(SecretStoreError::Write {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// Every file in the store folder (none if it does not exist): each holds a secret, so none
    /// may be read as a job's query or template (`Config::check_secret_files`).
    pub fn files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| !t.is_dir()))
            .map(|entry| entry.path())
            .collect()
    }
}

/// The store file's content, in plain text.
#[cfg(not(windows))]
fn read_store_file(_name: &SecretName, path: &Path) -> Result<Vec<u8>, SecretStoreError> {
    Ok(crate::secret_file::read(path)?.into_bytes())
}

#[cfg(windows)]
fn read_store_file(name: &SecretName, path: &Path) -> Result<Vec<u8>, SecretStoreError> {
    windows::read(name, path)
}

/// `text` without one trailing `\n` or `\r\n`.
fn strip_line_ending(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SecretName {
        SecretName::parse(s).unwrap()
    }

    #[test]
    fn secret_names_are_plain_file_names() {
        for ok in ["reqcheck", "pg-password", "proxy_user", "sql.v2", "A1"] {
            assert_eq!(SecretName::parse(ok).unwrap().as_str(), ok);
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "..\\x",
            "a b",
            "pässword",
            "hunter2!",
            long.as_str(),
        ] {
            assert_eq!(
                SecretName::parse(bad),
                Err(SecretNameError::Invalid),
                "{bad}"
            );
        }
        for reserved in ["nul", "CON", "com1", "LPT9.txt", "aux.dpapi"] {
            assert!(
                matches!(
                    SecretName::parse(reserved),
                    Err(SecretNameError::Reserved(_))
                ),
                "{reserved}"
            );
        }
        assert!(SecretName::parse("console").is_ok());
        assert!(SecretName::parse("com10").is_ok());
    }

    #[test]
    fn an_invalid_name_is_not_quoted_in_its_error() {
        let e = SecretName::parse("hunter2!").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("reqsync secret set"), "{e}");
    }

    #[test]
    fn systemd_credentials_come_first_and_the_store_otherwise() {
        let store = SecretStore::new(PathBuf::from("/etc/reqsync/secrets"));
        let n = name("reqcheck");
        assert_eq!(
            store.locate_with(&n, Some("/run/credentials/reqsync.service".into())),
            Location::CredentialsDirectory("/run/credentials/reqsync.service/reqcheck".into())
        );
        assert_eq!(store.locate_with(&n, None), Location::Store(store.file(&n)));
        // systemd never sets it empty; an empty value is someone clearing it.
        assert_eq!(
            store.locate_with(&n, Some(OsString::new())),
            Location::Store(store.file(&n))
        );
        assert!(store.file(&n).starts_with("/etc/reqsync/secrets"));
    }

    #[test]
    fn the_default_store_is_beside_the_config() {
        assert_eq!(
            SecretStore::beside_config(Path::new("/srv/reqsync")).dir(),
            Path::new("/srv/reqsync/secrets")
        );
    }

    #[test]
    fn a_credentials_directory_file_is_read_without_the_owner_only_check() {
        let creds = tempfile::tempdir().unwrap();
        let path = creds.path().join("reqcheck");
        std::fs::write(&path, "from-systemd\n").unwrap();
        #[cfg(unix)]
        {
            // What systemd's ACL for the service's user looks like in the mode bits.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o440)).unwrap();
        }
        let store = SecretStore::new(creds.path().join("unused-store"));
        let n = name("reqcheck");
        let location = store.locate_with(&n, Some(creds.path().into()));
        let found = store.read_at(&n, location.clone()).unwrap();
        assert_eq!(found.secret.expose(), "from-systemd");
        assert_eq!(found.location, location);

        let missing = store
            .read_at(
                &name("other"),
                store.locate_with(&name("other"), Some(creds.path().into())),
            )
            .unwrap_err()
            .to_string();
        assert!(missing.contains("LoadCredential=other:"), "{missing}");
        assert!(missing.contains("reqsync secret set other"), "{missing}");
    }

    #[test]
    fn a_missing_secret_names_the_command_that_stores_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let e = store.read(&name("reqcheck"));
        // (Unless this test runs under systemd with credentials.)
        if std::env::var_os(CREDENTIALS_DIRECTORY).is_none() {
            let e = e.unwrap_err();
            assert!(matches!(e, SecretStoreError::Missing { .. }), "{e}");
            assert!(e.to_string().contains("reqsync secret set reqcheck"), "{e}");
        }
        assert!(matches!(
            store.remove(&name("reqcheck")),
            Err(SecretStoreError::Missing { .. })
        ));
    }

    #[test]
    fn one_line_ending_is_dropped_and_nothing_else() {
        assert_eq!(strip_line_ending("pw\n".into()), "pw");
        assert_eq!(strip_line_ending("pw\r\n".into()), "pw");
        assert_eq!(strip_line_ending("pw\n\n".into()), "pw\n");
        assert_eq!(strip_line_ending(" pw ".into()), " pw ");
        assert_eq!(strip_line_ending("pw\r".into()), "pw\r");
    }

    #[test]
    fn written_secrets_read_back_and_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("store").join("secrets"));
        let n = name("reqcheck");
        let written = store
            .write(&n, &Secret::new(" s3cret "), &WriteOptions::default())
            .unwrap();
        assert_eq!(written.path, store.file(&n));
        let read = |store: &SecretStore| {
            store
                .read_at(&n, store.locate_with(&n, None))
                .unwrap()
                .secret
        };
        assert_eq!(read(&store).expose(), " s3cret ");
        store
            .write(&n, &Secret::new("second"), &WriteOptions::default())
            .unwrap();
        assert_eq!(read(&store).expose(), "second");
        assert_eq!(store.files(), vec![store.file(&n)]);
        assert!(matches!(
            store.write(&n, &Secret::new(""), &WriteOptions::default()),
            Err(SecretStoreError::Empty { .. })
        ));
        store.remove(&n).unwrap();
        assert!(store.files().is_empty());
    }

    #[test]
    fn an_empty_secret_is_refused_without_a_value_to_quote() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reqcheck"), "\n").unwrap();
        let store = SecretStore::new(dir.path().join("store"));
        let n = name("reqcheck");
        let e = store
            .read_at(&n, store.locate_with(&n, Some(dir.path().into())))
            .unwrap_err();
        assert!(matches!(e, SecretStoreError::Empty { .. }), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn the_store_is_created_owner_only_and_its_files_too() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let n = name("reqcheck");
        store
            .write(&n, &Secret::new("pw"), &WriteOptions::default())
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.file(&n)), 0o600);
        assert_eq!(std::fs::read(store.file(&n)).unwrap(), b"pw\n");
    }

    #[cfg(unix)]
    #[test]
    fn a_store_file_others_can_read_is_refused_with_the_fix_and_without_the_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().to_path_buf());
        let n = name("reqcheck");
        std::fs::write(store.file(&n), "hunter2\n").unwrap();
        std::fs::set_permissions(store.file(&n), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = store
            .read_at(&n, store.locate_with(&n, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_store_folder_others_can_write_into_is_refused_for_writing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        std::fs::create_dir(store.dir()).unwrap();
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = store
            .write(
                &name("reqcheck"),
                &Secret::new("pw"),
                &WriteOptions::default(),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 700"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn scope_and_readers_are_refused_off_windows() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let options = WriteOptions {
            scope: Scope::User,
            readers: None,
        };
        assert!(matches!(
            store.write(&name("reqcheck"), &Secret::new("pw"), &options),
            Err(SecretStoreError::WindowsOnly)
        ));
    }
}
