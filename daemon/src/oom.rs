//! Telling the user that the out-of-memory killer ended their command.
//!
//! The kernel's only trace on the process is a SIGKILL (or, one shell further, exit status 137),
//! which also means "killed by hand" or "timed out". What tells them apart are the kernel's
//! counters of OOM kills: the sandbox cgroup's (`oom_kill` in `memory.events` or
//! `memory.oom_control`, see [`crate::cgroup`]) and the machine's (`/proc/vmstat`, for a system
//! OOM or where the cgroup's cannot be read). They are sampled before a command starts and after
//! it ends; a command that died of SIGKILL while a counter moved is, in all likelihood, the
//! victim, and its result says so.
//!
//! Sampling reads one or two small files (a few microseconds), and the files are found once.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cgroup::{Cgroup, read_oom_kills};
use crate::reaper::ExitStatus;

struct Sources {
    cgroup: Option<PathBuf>,
    machine: PathBuf,
}

fn sources() -> &'static Sources {
    static S: OnceLock<Sources> = OnceLock::new();
    S.get_or_init(|| Sources {
        cgroup: Cgroup::current().oom_kill_counter(),
        machine: PathBuf::from("/proc/vmstat"),
    })
}

/// The counters at one moment; `None` where a counter cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    cgroup: Option<u64>,
    machine: Option<u64>,
}

impl Counts {
    pub fn now() -> Counts {
        let s = sources();
        Counts { cgroup: s.cgroup.as_deref().and_then(read_oom_kills), machine: read_oom_kills(&s.machine) }
    }

    /// Whether the OOM killer ended some process of the sandbox between `before` and `self`.
    /// The machine's counter (every container's kills) speaks only where the sandbox's cgroup
    /// counter cannot be read.
    pub fn moved_since(self, before: Counts) -> bool {
        let up = |a: Option<u64>, b: Option<u64>| matches!((a, b), (Some(a), Some(b)) if a > b);
        match (self.cgroup, before.cgroup) {
            (Some(_), Some(_)) => up(self.cgroup, before.cgroup),
            _ => up(self.machine, before.machine),
        }
    }
}

/// Whether a process that ended with `status` died the way an OOM kill looks: SIGKILL, or a
/// shell reporting its child's SIGKILL as 128 + 9.
pub fn looks_killed(status: ExitStatus) -> bool {
    matches!(status, ExitStatus::Signaled(libc::SIGKILL) | ExitStatus::Exited(137))
}

/// The sentence for a command that ended with `status`, when the OOM killer ended it (counters
/// sampled at its start in `before`).
pub fn verdict(before: Counts, status: ExitStatus) -> Option<String> {
    (looks_killed(status) && Counts::now().moved_since(before)).then(sentence)
}

/// "killed by the out-of-memory killer", with the sandbox's limit when it has one.
pub fn sentence() -> String {
    match Cgroup::current().memory_limit() {
        Some(limit) => format!(
            "killed by the out-of-memory killer: the sandbox's memory limit is {} MiB",
            limit.div_ceil(1 << 20)
        ),
        None => "killed by the out-of-memory killer: the machine ran out of memory".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_that_moved_means_an_oom_kill() {
        let c = |cg, m| Counts { cgroup: cg, machine: m };
        assert!(c(Some(2), Some(5)).moved_since(c(Some(1), Some(5))));
        // Another container's OOM kill is not ours when our own counter says nothing.
        assert!(!c(Some(1), Some(6)).moved_since(c(Some(1), Some(5))));
        assert!(c(None, Some(6)).moved_since(c(None, Some(5))));
        assert!(!c(Some(1), Some(5)).moved_since(c(Some(1), Some(5))));
        // A counter that could not be read on either side says nothing.
        assert!(!c(Some(3), None).moved_since(c(None, None)));
        assert!(!c(None, None).moved_since(c(None, None)));
    }

    #[test]
    fn only_a_sigkill_looks_like_the_oom_killer() {
        assert!(looks_killed(ExitStatus::Signaled(libc::SIGKILL)));
        assert!(looks_killed(ExitStatus::Exited(137)));
        assert!(!looks_killed(ExitStatus::Signaled(libc::SIGTERM)));
        assert!(!looks_killed(ExitStatus::Exited(1)));
        assert!(!looks_killed(ExitStatus::Unknown));
        // Nothing moved between two samples a moment apart: no verdict.
        assert_eq!(verdict(Counts::now(), ExitStatus::Signaled(libc::SIGKILL)), None);
    }

    #[test]
    fn the_sentence_names_the_killer() {
        assert!(sentence().starts_with("killed by the out-of-memory killer: "));
    }
}
