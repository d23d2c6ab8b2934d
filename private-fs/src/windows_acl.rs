//! Windows access control lists for the files and folders reqsync keeps for itself: a security
//! descriptor from SDDL text, and folders created with a protected, owner-only ACL.
//!
//! Why: a folder created under `C:\ProgramData` inherits an ACL that lets every local user read
//! what is in it (and create files there). reqsync's state holds patient numbers and keys, so
//! its folders are created with their own ACL instead: SYSTEM, Administrators and the folder's
//! owner (the account reqsync runs as), inherited by everything created inside. Unix gets the
//! same from mode 0700 (`private_fs`).
//!
//! The workspace denies `unsafe`; the calls into advapi32 and kernel32 below are the exceptions,
//! each allowed on its own item with the reason it is sound.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;

use windows_sys::Win32::Foundation::{HLOCAL, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    ACL, GetSecurityDescriptorDacl, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES,
};
use windows_sys::Win32::Storage::FileSystem::CreateDirectoryW;

/// A protected DACL (`P`: nothing inherited from the parent) granting full control to SYSTEM,
/// Administrators and the owner (`OW`, "owner rights"), inherited by files (`OI`) and folders
/// (`CI`) created inside.
pub const PRIVATE_FOLDER_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)";

/// A security descriptor made from SDDL text (LocalAlloc'd by Windows, freed when dropped).
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl std::fmt::Debug for SecurityDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pointer is all there is to show without another call into Windows.
        f.debug_tuple("SecurityDescriptor").field(&self.0).finish()
    }
}

impl SecurityDescriptor {
    #[allow(unsafe_code)]
    pub fn from_sddl(sddl: &str) -> io::Result<Self> {
        let wide = wide(sddl);
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `wide` is NUL-terminated and outlives the call; `descriptor` receives a
        // LocalAlloc'd descriptor that `Self` owns; the size out-pointer may be null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self(descriptor))
    }

    /// The descriptor's DACL, pointing into the descriptor (valid while `self` is).
    #[allow(unsafe_code)]
    pub fn dacl(&self) -> io::Result<*const ACL> {
        let mut present = 0;
        let mut defaulted = 0;
        let mut dacl: *mut ACL = std::ptr::null_mut();
        // SAFETY: `self.0` is a valid descriptor made by `from_sddl`; the out-pointers are
        // valid locals.
        let ok =
            unsafe { GetSecurityDescriptorDacl(self.0, &mut present, &mut dacl, &mut defaulted) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        if present == 0 || dacl.is_null() {
            return Err(io::Error::other("the security descriptor has no DACL"));
        }
        Ok(dacl)
    }
}

impl Drop for SecurityDescriptor {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the descriptor was allocated by Windows with LocalAlloc for us alone, and is
        // freed once.
        unsafe {
            LocalFree(self.0 as HLOCAL);
        }
    }
}

/// Creates the folder `path` (its parent must exist) with [`PRIVATE_FOLDER_SDDL`] as its ACL
/// from the start: there is no moment when it carries the parent's inherited ACL.
#[allow(unsafe_code)]
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let descriptor = SecurityDescriptor::from_sddl(PRIVATE_FOLDER_SDDL)?;
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    let wide_path: Vec<u16> = path
        .as_os_str()
        .encode_wide()
        .chain(std::iter::once(0))
        .collect();
    // SAFETY: `wide_path` is NUL-terminated and `attributes` points at a live descriptor; both
    // outlive the call, which only reads them.
    let ok = unsafe { CreateDirectoryW(wide_path.as_ptr(), &attributes) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn wide(text: &str) -> Vec<u16> {
    OsStr::new(text)
        .encode_wide()
        .chain(std::iter::once(0))
        .collect()
}
