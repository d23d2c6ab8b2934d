//! Telling "the process ran out of file descriptors" from other I/O failures.
//!
//! EMFILE (the process's open-file limit) and ENFILE (the system's) say nothing about the file
//! or socket being opened: the process, or the machine, holds too many already. They are
//! reported as what they are, with what to do, rather than as whatever the open was for (a
//! run lock that cannot be opened is not "another run is in progress").

/// What to do about it, for messages.
pub(crate) const FILE_LIMIT_ADVICE: &str = "raise the open-file limit (`ulimit -n`, or `LimitNOFILE=` \
     in a systemd unit) or look for what holds so many files and sockets open \
     (`ls /proc/PID/fd`)";

/// Whether `e` is the process or the system running out of file descriptors.
pub(crate) fn out_of_file_descriptors(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn emfile_and_enfile_are_told_apart_from_other_errors() {
        use rustix::io::Errno;
        for errno in [Errno::MFILE, Errno::NFILE] {
            assert!(out_of_file_descriptors(&std::io::Error::from(errno)));
        }
        for errno in [Errno::ACCESS, Errno::NOENT, Errno::AGAIN] {
            assert!(!out_of_file_descriptors(&std::io::Error::from(errno)));
        }
        assert!(!out_of_file_descriptors(&std::io::Error::other("x")));
    }
}
