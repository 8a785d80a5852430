//! System calls the standard library does not offer, each behind a safe
//! function. New unsafe code in this crate goes here, with its SAFETY note.

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// This host's name, as `uname -n` gives it (its UTS namespace's).
pub fn host_name() -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for writes of its whole length, which is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Sends `signal` to process `pid` (a child this process started); false
/// when it is gone or the pid does not fit.
#[cfg(feature = "testkit")]
pub fn signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill takes two integers and touches no memory of ours.
    unsafe { libc::kill(pid, signal) == 0 }
}
