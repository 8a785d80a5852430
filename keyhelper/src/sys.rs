//! The helper's only unsafe code: descriptor plumbing std does not offer.

use std::fs::File;
use std::os::fd::FromRawFd;

/// Keep the real stdout for the one response and point descriptor 1 at
/// /dev/null, so that nothing else (ctap-hid-fido2 prints to stdout in
/// places) can reach the caller's parser or a terminal.
pub fn claim_stdout() -> Option<File> {
    // SAFETY: plain descriptor calls on descriptors this process owns; the
    // duplicate is owned by the returned File and nothing else.
    unsafe {
        let saved = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if saved < 0 {
            return None;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null < 0 || libc::dup2(null, 1) < 0 {
            libc::close(saved);
            return None;
        }
        libc::close(null);
        Some(File::from_raw_fd(saved))
    }
}
