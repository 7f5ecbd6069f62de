//! Signalling processes and process groups.

/// Sends `sig` to every process in group `pgid`. A group that is already gone is not an error.
pub fn kill_group(pgid: u32, sig: libc::c_int) {
    if pgid > 1 {
        // SAFETY: plain syscall; a negative pid addresses the group.
        unsafe { libc::kill(-(pgid as libc::pid_t), sig) };
    }
}

/// Kills a process group when dropped unless disarmed: a request whose client went away must
/// not leave its command running.
pub struct GroupGuard {
    pgid: Option<u32>,
}

impl GroupGuard {
    pub fn new(pgid: u32) -> Self {
        GroupGuard { pgid: Some(pgid) }
    }

    pub fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            kill_group(pgid, libc::SIGKILL);
        }
    }
}
