//! tapctl's unsafe code: the few system calls the standard library does
//! not offer, each behind a safe function with its SAFETY note.

use std::os::fd::{AsRawFd, BorrowedFd};

/// The real uid of this process.
pub fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The terminal's current mode, if `fd` is a terminal.
pub fn terminal_mode(fd: BorrowedFd<'_>) -> Option<libc::termios> {
    // SAFETY: termios is plain data; all-zero is a valid value.
    let mut mode: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is borrowed open for this call; tcgetattr writes only `mode`.
    (unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut mode) } == 0).then_some(mode)
}

/// Sets the terminal's mode (after pending output is written; pending
/// input is dropped, as for a password prompt).
pub fn set_terminal_mode(fd: BorrowedFd<'_>, mode: &libc::termios) {
    // SAFETY: fd is borrowed open for this call; tcsetattr only reads `mode`.
    unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSAFLUSH, mode) };
}
