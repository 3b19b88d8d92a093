//! Free space on the store's filesystem. RocksDB does not survive running out of space in the
//! middle of a write: the system library Rewind links aborts the process on an assertion (seen
//! with Debian's 7.8.3, on a write-ahead-log sync after ENOSPC), and even a build without
//! assertions stops taking writes until it is reopened. Refusing writes a little before that
//! point keeps the failure on the path that answers "retry later".

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::StorageError;

/// Bytes available to an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs for the call to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// `Ok` while at least `reserve` bytes are free where `path` lives.
pub fn ensure_free(path: &Path, reserve: u64) -> Result<(), StorageError> {
    if reserve == 0 {
        return Ok(());
    }
    let free = free_bytes(path).map_err(|source| StorageError::Io { path: path.to_owned(), source })?;
    if free < reserve {
        return Err(StorageError::DiskFull { path: path.to_owned(), free, reserve });
    }
    Ok(())
}
