//! Finding and ending every desktop process, including the ones that left their process group
//! (dbus-daemon and the services it activates, agents xfce4 forks off): each desktop process
//! carries an environment tag, inherited by all its descendants, and the sweep ends every
//! process whose environment holds it. Never by name: other desktops may run on the machine.
//!
//! The daemon chooses the tag and hands it to the agent (which must not carry the tag itself);
//! the agent sweeps on stop, the daemon after an agent that died. Both use this one contract.

use std::time::{Duration, Instant};

/// The variable that marks desktop processes.
pub const TAG_VAR: &str = "DAYTONA_DESKTOP_TAG";
/// Where the daemon passes the tag's value to the agent.
pub const TAG_FROM_DAEMON_VAR: &str = "DAYTONA_COMPUTER_USE_DESKTOP_TAG";

/// Pids (other than ours) whose environment contains `TAG_VAR=tag`.
pub fn tagged(tag: &str) -> Vec<i32> {
    let needle = format!("{TAG_VAR}={tag}");
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

/// SIGTERM to every tagged process, then SIGKILL to those still there after `grace`, then up
/// to `grace` more for them to be gone (whoever starts the next desktop needs the display and
/// the ports back). Blocking: run it off the async runtime. Returns how many processes were
/// found.
pub fn end_tagged(tag: &str, grace: Duration) -> usize {
    let pids = tagged(tag);
    if pids.is_empty() {
        return 0;
    }
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        for pid in tagged(tag) {
            // SAFETY: plain syscall; the pid was tagged a moment ago.
            unsafe { libc::kill(pid, signal) };
        }
        let deadline = Instant::now() + grace;
        while !tagged(tag).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    pids.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_tagged_processes_only() {
        let tag = format!("test-{}", std::process::id());
        let mut tagged_child =
            std::process::Command::new("sleep").arg("30").env(TAG_VAR, &tag).spawn().unwrap();
        let mut other = std::process::Command::new("sleep").arg("30").env(TAG_VAR, "other").spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while tagged(&tag).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(tagged(&tag), vec![tagged_child.id() as i32]);
        assert_eq!(end_tagged(&tag, Duration::from_secs(2)), 1);
        assert!(tagged_child.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(other.try_wait().unwrap().is_none(), "an untagged process is left alone");
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
