//! tapctl's side of a conversation: prompts on the controlling terminal
//! (echo off for secrets), messages on stderr. Without a terminal, answers
//! are read from stdin, one per line.

use std::io::{BufRead, Write};
use tap_core::signin::{ConversationFailed, Prompt};
use zeroize::Zeroizing;

pub struct Terminal;

impl Prompt for Terminal {
    fn secret(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationFailed> {
        let line = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
        {
            Ok(tty) => read_hidden(&tty, prompt),
            Err(_) => {
                crate::output::prompt(prompt);
                read_line(&mut std::io::stdin().lock())
            }
        };
        line.map(Some).ok_or(ConversationFailed)
    }

    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        crate::output::message(text);
        Ok(())
    }
}

fn read_line(input: &mut impl BufRead) -> Option<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::new());
    // End of input is no answer at all, not an empty one.
    if input.read_until(b'\n', &mut line).ok()? == 0 {
        return None;
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Some(line)
}

/// Reads one line from the terminal with echo off, restoring it after.
fn read_hidden(tty: &std::fs::File, prompt: &str) -> Option<Zeroizing<Vec<u8>>> {
    use std::os::fd::AsFd;
    let fd = tty.as_fd();
    let saved = crate::sys::terminal_mode(fd);
    if let Some(saved) = &saved {
        let mut quiet = *saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        crate::sys::set_terminal_mode(fd, &quiet);
    }
    let mut writer = tty;
    let _ = write!(writer, "{prompt}");
    let _ = writer.flush();
    let line = read_line(&mut std::io::BufReader::new(tty));
    if let Some(saved) = &saved {
        crate::sys::set_terminal_mode(fd, saved);
    }
    line
}
