//! Output whose reader has gone away (`reqsync seed … | head -1`, a pager closed early).
//!
//! Rust ignores SIGPIPE, so writing to a closed pipe is an error, and `println!` turns that error
//! into a panic with a backtrace. A command-line tool should end quietly instead, as `cat` does:
//! the reader asked for no more. Restoring SIGPIPE's default would do that too, but would also
//! kill the daemon on any write to a pipe whose reader died; recognising the panic keeps the
//! effect to printing. Any other failure to print (a full disk under a redirect) still ends the
//! command with an error, in one line.

use std::io::ErrorKind;
use std::panic::PanicHookInfo;

use super::exit;

/// Installs the panic hook: a failed `print!` ends the process (exit 0 when the reader closed
/// the pipe, [`exit::INTERNAL`] otherwise); every other panic goes to the default hook.
pub fn end_quietly_when_the_reader_leaves() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match failed_output(info) {
        Some(closed) => {
            // Entries of the command's audit trail may still be on their way to disk.
            reqsync_runtime::audit::flush();
            if closed {
                std::process::exit(i32::from(exit::OK));
            }
            // The stream that failed may be stderr itself: nothing more can be said then.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"error: cannot write the output (standard output or error)\n",
            );
            std::process::exit(i32::from(exit::INTERNAL));
        }
        None => default(info),
    }));
}

/// For a panic of `print!`/`eprint!` (the standard library's "failed printing to stdout: …"),
/// whether it was a closed pipe; `None` for any other panic.
fn failed_output(info: &PanicHookInfo<'_>) -> Option<bool> {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    let cause = message
        .strip_prefix("failed printing to stdout: ")
        .or_else(|| message.strip_prefix("failed printing to stderr: "))?;
    Some(is_closed_pipe(cause))
}

/// Whether an I/O error's text is a closed pipe's: EPIPE on Unix, ERROR_BROKEN_PIPE (109) and
/// ERROR_NO_DATA (232, "the pipe is being closed") on Windows. The panic carries the error as
/// text only, so it is matched against what those errors print.
fn is_closed_pipe(cause: &str) -> bool {
    let closed = [
        std::io::Error::from(ErrorKind::BrokenPipe),
        #[cfg(unix)]
        std::io::Error::from_raw_os_error(32),
        #[cfg(windows)]
        std::io::Error::from_raw_os_error(109),
        #[cfg(windows)]
        std::io::Error::from_raw_os_error(232),
    ];
    closed.iter().any(|e| cause == e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_told_from_other_output_errors() {
        #[cfg(unix)]
        assert!(is_closed_pipe("Broken pipe (os error 32)"));
        assert!(is_closed_pipe(
            &std::io::Error::from(ErrorKind::BrokenPipe).to_string()
        ));
        assert!(!is_closed_pipe(
            &std::io::Error::from(ErrorKind::StorageFull).to_string()
        ));
        assert!(!is_closed_pipe("No space left on device (os error 28)"));
    }
}
