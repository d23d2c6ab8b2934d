//! The Windows store: each secret a DPAPI blob (`CryptProtectData`) in `NAME.dpapi`, readable
//! only by SYSTEM, Administrators, the file's owner and the named readers.
//!
//! Why DPAPI: Windows keeps the keys itself, so there is no key file beside the secrets to
//! protect in turn. With the machine scope any account on this machine can decrypt the blob,
//! which is what lets an administrator store a secret that the service's virtual account or
//! NETWORK SERVICE then uses; the file's ACL is what keeps other local users from reading it,
//! and a copy taken elsewhere is useless. With the user scope only the account that stored it
//! can decrypt it, on this machine.
//!
//! The blobs are made with an extra "entropy" string: not a secret (it is in this source), but
//! it keeps a blob other software stored with DPAPI from being accepted as ours, and ours from
//! being opened by a tool that calls `CryptUnprotectData` on any file it is given.
//!
//! The workspace denies `unsafe`; the calls into crypt32 and advapi32 below are the exceptions,
//! each allowed on its own item with the reason it is sound.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::{GENERIC_WRITE, HLOCAL, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, SE_FILE_OBJECT, SetSecurityInfo,
};
use windows_sys::Win32::Security::Cryptography::{
    CRYPT_INTEGER_BLOB, CRYPTPROTECT_LOCAL_MACHINE, CRYPTPROTECT_UI_FORBIDDEN, CryptProtectData,
    CryptUnprotectData,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, LookupAccountNameW, PROTECTED_DACL_SECURITY_INFORMATION,
    SID_NAME_USE,
};
use windows_sys::Win32::Storage::FileSystem::WRITE_DAC;

use super::{Scope, SecretName, SecretStoreError, WriteOptions};
use crate::input_file;
use crate::reqcheck::Secret;
use crate::secret_file::SecretFileError;
use crate::windows_accounts as accounts;
use reqsync_private_fs::windows_acl::{SecurityDescriptor, wide};

/// Mixed into every blob (see the module's documentation). Changing it makes every stored
/// secret unreadable: a new format gets a new string and keeps reading the old one.
const ENTROPY: &[u8] = b"reqsync secret v1";

/// Who may read a new secret file unless `--reader` says otherwise: what `reqsync service
/// install` (the virtual account) and `reqsync schedule install` (NETWORK SERVICE) run as.
pub(crate) const DEFAULT_READERS: [&str; 2] = [r"NT SERVICE\reqsync", "NETWORK SERVICE"];

/// The secret in `path`, decrypted.
pub(super) fn read(name: &SecretName, path: &Path) -> Result<Vec<u8>, SecretStoreError> {
    // Said plainly: "access denied" alone does not tell the operator which account to add.
    if let Err(e) = std::fs::File::open(path)
        && e.kind() == io::ErrorKind::PermissionDenied
    {
        return Err(SecretStoreError::Denied {
            name: name.clone(),
            path: path.to_path_buf(),
        });
    }
    let blob = input_file::read(path, input_file::SECRET).map_err(SecretFileError::Input)?;
    unprotect(&blob).map_err(|e| SecretStoreError::Undecryptable {
        name: name.clone(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Encrypts `value` and writes it to `path` with its ACL; returns the readers given access.
pub(super) fn write(
    name: &SecretName,
    path: &Path,
    value: &Secret,
    options: &WriteOptions,
) -> Result<Vec<String>, SecretStoreError> {
    let readers: Vec<String> = match &options.readers {
        Some(readers) => readers.clone(),
        None => DEFAULT_READERS.iter().map(|r| r.to_string()).collect(),
    };
    let mut sddl = String::from(
        // D:P — a protected DACL: nothing inherited from the folder (ProgramData lets every
        // user read what is below it). SY, BA: SYSTEM and Administrators; OW: the file's owner
        // (who stored it, to replace or remove it). FA: full access; FR: read.
        "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;OW)",
    );
    for reader in &readers {
        let sid = account_sid(reader).map_err(|reason| SecretStoreError::Account {
            account: reader.clone(),
            reason,
        })?;
        sddl.push_str(&format!("(A;;FR;;;{sid})"));
    }
    let blob = protect(value.expose().as_bytes(), options.scope).map_err(|e| {
        SecretStoreError::Encrypt {
            name: name.clone(),
            reason: e.to_string(),
        }
    })?;
    write_with_dacl(path, &blob, &sddl).map_err(|e| SecretStoreError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(readers)
}

/// `account`'s SID as text: computed where it is fixed, else asked from Windows.
fn account_sid(account: &str) -> Result<String, String> {
    match accounts::known_sid(account) {
        Some(known) => known,
        None => lookup_account(account).map_err(|e| {
            format!("{e} (name it as DOMAIN\\user, MACHINE\\user, NT SERVICE\\name or S-1-5-…)")
        }),
    }
}

/// `bytes` as the blob struct DPAPI reads. The API's pointer is `*mut` only because C has no
/// const in that struct; DPAPI never writes through an input blob.
fn input_blob(bytes: &[u8]) -> io::Result<CRYPT_INTEGER_BLOB> {
    Ok(CRYPT_INTEGER_BLOB {
        cbData: u32::try_from(bytes.len())
            .map_err(|_| io::Error::other("more than 4 GiB to encrypt"))?,
        pbData: bytes.as_ptr().cast_mut(),
    })
}

/// An output blob DPAPI allocated (LocalAlloc): zeroed (it may hold the plaintext) and freed
/// when dropped.
struct LocalBlob(CRYPT_INTEGER_BLOB);

impl LocalBlob {
    #[allow(unsafe_code)]
    fn to_vec(&self) -> Vec<u8> {
        if self.0.pbData.is_null() {
            return Vec::new();
        }
        // SAFETY: after a successful call DPAPI's output blob points at `cbData` initialised
        // bytes it allocated for us; nothing else refers to them while `self` lives.
        unsafe { std::slice::from_raw_parts(self.0.pbData, self.0.cbData as usize) }.to_vec()
    }
}

impl Drop for LocalBlob {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if self.0.pbData.is_null() {
            return;
        }
        // SAFETY: the buffer is DPAPI's LocalAlloc allocation of `cbData` bytes, owned by this
        // value alone and freed exactly once, here.
        unsafe {
            std::ptr::write_bytes(self.0.pbData, 0, self.0.cbData as usize);
            LocalFree(self.0.pbData as HLOCAL);
        }
    }
}

/// Encrypts `plain` for this machine or this user.
#[allow(unsafe_code)]
fn protect(plain: &[u8], scope: Scope) -> io::Result<Vec<u8>> {
    let input = input_blob(plain)?;
    let entropy = input_blob(ENTROPY)?;
    // No UI: a service or a scheduled task has no desktop to show a prompt on.
    let mut flags = CRYPTPROTECT_UI_FORBIDDEN;
    if scope == Scope::Machine {
        flags |= CRYPTPROTECT_LOCAL_MACHINE;
    }
    let mut output = LocalBlob(CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: std::ptr::null_mut(),
    });
    // SAFETY: `input` and `entropy` point into slices that outlive the call and are only read;
    // the description, reserved and prompt pointers may be null; `output.0` is a valid struct
    // the call fills with a buffer that `LocalBlob` then owns and frees.
    let ok = unsafe {
        CryptProtectData(
            &input,
            std::ptr::null(),
            &entropy,
            std::ptr::null(),
            std::ptr::null(),
            flags,
            &mut output.0,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(output.to_vec())
}

/// Decrypts a blob [`protect`] made (either scope: the blob says which).
#[allow(unsafe_code)]
fn unprotect(blob: &[u8]) -> io::Result<Vec<u8>> {
    let input = input_blob(blob)?;
    let entropy = input_blob(ENTROPY)?;
    let mut output = LocalBlob(CRYPT_INTEGER_BLOB {
        cbData: 0,
        pbData: std::ptr::null_mut(),
    });
    // SAFETY: as in `protect`; the description out-pointer may be null (not wanted).
    let ok = unsafe {
        CryptUnprotectData(
            &input,
            std::ptr::null_mut(),
            &entropy,
            std::ptr::null(),
            std::ptr::null(),
            CRYPTPROTECT_UI_FORBIDDEN,
            &mut output.0,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(output.to_vec())
}

/// Writes `bytes` to `dest` with the DACL `sddl` describes, all at once: into a new file beside
/// it, then renamed over `dest`. The new file is opened without sharing and its DACL set
/// through that handle before anything is written, so no other process can open it while it
/// still has the folder's inherited ACL, and a reader of `dest` sees the old blob or the new.
fn write_with_dacl(dest: &Path, bytes: &[u8], sddl: &str) -> io::Result<()> {
    let descriptor = SecurityDescriptor::from_sddl(sddl)?;
    let dacl = descriptor.dacl()?;
    let tmp = reqsync_private_fs::temporary_sibling(dest)?;
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .access_mode(GENERIC_WRITE | WRITE_DAC)
            .share_mode(0)
            .open(&tmp)?;
        set_dacl(&file, dacl)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, dest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Replaces `file`'s DACL with `dacl`, protected from inheritance.
#[allow(unsafe_code)]
fn set_dacl(file: &std::fs::File, dacl: *const ACL) -> io::Result<()> {
    // SAFETY: the handle is open with WRITE_DAC for the duration of the call; `dacl` points
    // into a live security descriptor (the caller holds it); owner, group and SACL are not
    // set (null).
    let status = unsafe {
        SetSecurityInfo(
            file.as_raw_handle(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            dacl,
            std::ptr::null(),
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(())
}

/// `account`'s SID as text, from Windows (a local or domain user or group).
#[allow(unsafe_code)]
fn lookup_account(account: &str) -> io::Result<String> {
    let name = wide(account);
    let mut sid_len = 0u32;
    let mut domain_len = 0u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: a size query: null buffers with zero lengths; the call writes only the lengths
    // and `kind`, all valid locals.
    unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name.as_ptr(),
            std::ptr::null_mut(),
            &mut sid_len,
            std::ptr::null_mut(),
            &mut domain_len,
            &mut kind,
        )
    };
    if sid_len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u32s: a SID's sub-authorities are 32-bit, so its buffer is aligned for them.
    let mut sid = vec![0u32; (sid_len as usize).div_ceil(4)];
    let mut domain = vec![0u16; domain_len.max(1) as usize];
    // SAFETY: buffers at least as large as the first call asked for, with those sizes passed.
    let ok = unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name.as_ptr(),
            sid.as_mut_ptr().cast(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` holds the valid SID just written; `text` receives a LocalAlloc'd,
    // NUL-terminated string, read and freed below.
    let ok = unsafe { ConvertSidToStringSidW(sid.as_mut_ptr().cast(), &mut text) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `text` is the NUL-terminated string Windows allocated: read up to the NUL, then
    // freed once.
    let sid_text = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text as HLOCAL);
        s
    };
    Ok(sid_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_store::{Location, SecretStore};

    #[test]
    fn dpapi_round_trips_in_both_scopes() {
        for scope in [Scope::Machine, Scope::User] {
            let blob = protect(b"s3cret \xc3\xa9", scope).unwrap();
            assert!(!blob.windows(6).any(|w| w == b"s3cret"), "{scope:?}");
            assert_eq!(unprotect(&blob).unwrap(), b"s3cret \xc3\xa9");
        }
    }

    #[test]
    fn a_blob_made_without_our_entropy_is_refused() {
        let plain = input_blob(b"other software's secret").unwrap();
        let mut output = LocalBlob(CRYPT_INTEGER_BLOB {
            cbData: 0,
            pbData: std::ptr::null_mut(),
        });
        #[allow(unsafe_code)]
        // SAFETY: as in `protect`, without entropy.
        let ok = unsafe {
            CryptProtectData(
                &plain,
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null(),
                CRYPTPROTECT_UI_FORBIDDEN,
                &mut output.0,
            )
        };
        assert_ne!(ok, 0);
        assert!(unprotect(&output.to_vec()).is_err());
        assert!(unprotect(b"not a blob at all").is_err());
    }

    #[test]
    fn the_store_writes_a_dpapi_file_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().join("secrets"));
        let name = SecretName::parse("reqcheck").unwrap();
        let options = WriteOptions {
            scope: Scope::Machine,
            readers: Some(vec!["NETWORK SERVICE".into()]),
        };
        let written = store
            .write(&name, &Secret::new("s3cret"), &options)
            .unwrap();
        assert!(written.path.to_string_lossy().ends_with("reqcheck.dpapi"));
        assert!(
            !std::fs::read(&written.path)
                .unwrap()
                .windows(6)
                .any(|w| w == b"s3cret")
        );
        let found = store
            .read_at(&name, Location::Store(written.path.clone()))
            .unwrap();
        assert_eq!(found.secret.expose(), "s3cret");
    }

    #[test]
    fn a_damaged_blob_says_how_to_store_the_secret_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().to_path_buf());
        let name = SecretName::parse("reqcheck").unwrap();
        std::fs::write(store.file(&name), b"copied from another machine").unwrap();
        let e = store
            .read_at(&name, Location::Store(store.file(&name)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("reqsync secret set reqcheck"), "{e}");
        assert!(e.contains("--scope machine"), "{e}");
    }

    #[test]
    fn an_unknown_reader_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::new(dir.path().to_path_buf());
        let options = WriteOptions {
            scope: Scope::Machine,
            readers: Some(vec![r"NO-SUCH-DOMAIN\no-such-user-reqsync".into()]),
        };
        let e = store
            .write(
                &SecretName::parse("reqcheck").unwrap(),
                &Secret::new("pw"),
                &options,
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("no-such-user-reqsync"), "{e}");
    }
}
