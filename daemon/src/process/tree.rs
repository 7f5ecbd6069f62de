//! Process trees from `/proc`: finding every descendant of a process, so that deleting a
//! session also reaches what its commands started with `setsid`, `nohup … &` or `disown`.
//!
//! The walk must happen while the root is still alive: once it dies its children are
//! re-parented to PID 1 (or to the daemon as subreaper) and can no longer be told apart by
//! parentage. Each found process is remembered with its start time, so a later kill never hits
//! an unrelated process that reused the pid in between.

use std::collections::HashMap;

/// A process identity that survives pid reuse: the pid and its start time (clock ticks since
/// boot, field 22 of `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
    /// Its process group when found.
    pub pgid: u32,
}

/// The fields of `/proc/<pid>/stat` the walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    pub state: char,
    pub pgid: u32,
    pub start: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    // After state (3), ppid (4) and pgrp (5), start time is field 22: skip fields 6..=21.
    let start = fields.nth(16)?.parse().ok()?;
    Some(Stat { ppid, state, pgid, start })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every live process with its stat, read once.
fn snapshot() -> HashMap<u32, Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return HashMap::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// The descendants of `root` in `table` (pid → stat), deepest first, so that signalling them in
/// order never lets a parent react to a child's death before the child was reached.
pub fn descendants_in(table: &HashMap<u32, Stat>, root: u32) -> Vec<Proc> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, st) in table {
        children.entry(st.ppid).or_default().push(pid);
    }
    // Breadth-first gives parents before children; reversed, children come first.
    let mut order = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    while let Some(pid) = queue.pop_front() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if child != root && !order.iter().any(|p: &Proc| p.pid == child) {
                let st = &table[&child];
                order.push(Proc { pid: child, start: st.start, pgid: st.pgid });
                queue.push_back(child);
            }
        }
    }
    order.reverse();
    order
}

/// The live descendants of `root`, deepest first. Blocking: reads `/proc`.
pub fn descendants(root: u32) -> Vec<Proc> {
    descendants_in(&snapshot(), root)
}

/// The identity of a live process, if it exists.
pub fn identify(pid: u32) -> Option<Proc> {
    read_stat(pid).map(|st| Proc { pid, start: st.start, pgid: st.pgid })
}

/// Whether `p` still runs: same start time, and not a zombie waiting to be reaped.
pub fn is_alive(p: Proc) -> bool {
    read_stat(p.pid).is_some_and(|st| st.start == p.start && st.state != 'Z' && st.state != 'X')
}

/// Signals `p` unless its pid now belongs to another process.
pub fn signal(p: Proc, sig: libc::c_int) {
    if p.pid > 1 && is_alive(p) {
        // SAFETY: plain syscall.
        unsafe { libc::kill(p.pid as libc::pid_t, sig) };
    }
}

/// Signals every process group one of `found` still belongs to, except the daemon's own. A
/// group signal reaches all its members at once, and a member forking at that moment fails to:
/// what a fork bomb started after `found` was taken is reached too, as long as it stayed in its
/// parent's group (which is what shells without job control do).
pub fn signal_groups(found: &[Proc], sig: libc::c_int) {
    // SAFETY: plain syscall without arguments.
    let ours = unsafe { libc::getpgrp() } as u32;
    // A group is signalled only while one of `found` still lives in it (same process, same
    // group): an emptied group's number may since belong to somebody else's processes.
    let still_in = |p: &&Proc| {
        read_stat(p.pid).is_some_and(|st| st.start == p.start && st.pgid == p.pgid && st.state != 'Z')
    };
    let mut groups: Vec<u32> =
        found.iter().filter(still_in).map(|p| p.pgid).filter(|&g| g > 1 && g != ours).collect();
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        crate::signal::kill_group(g, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(pid: u32, name: &str, ppid: u32, start: u64) -> String {
        let mut fields = vec!["S".to_string(), ppid.to_string()];
        fields.extend((5..=21).map(|i| i.to_string()));
        fields.push(start.to_string());
        fields.extend(["0", "0"].map(String::from));
        format!("{pid} ({name}) {}", fields.join(" "))
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        let st = parse_stat(&stat_line(10, "we ird) (name", 7, 12345)).unwrap();
        assert_eq!(st, Stat { ppid: 7, state: 'S', pgid: 5, start: 12345 });
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn descendants_deepest_first() {
        let mut t = HashMap::new();
        for (pid, ppid) in [(1, 0), (10, 1), (11, 10), (12, 10), (13, 11), (20, 1), (14, 13)] {
            t.insert(pid, Stat { ppid, state: 'S', pgid: pid, start: pid as u64 * 100 });
        }
        let d: Vec<u32> = descendants_in(&t, 10).iter().map(|p| p.pid).collect();
        assert_eq!(d.len(), 4);
        let pos = |pid| d.iter().position(|&p| p == pid).unwrap();
        assert!(pos(14) < pos(13) && pos(13) < pos(11), "{d:?}");
        assert!(!d.contains(&20) && !d.contains(&10));
        assert_eq!(descendants_in(&t, 14), vec![]);
    }

    #[test]
    fn signal_groups_reaches_the_whole_group_but_never_ours() {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let (mut child, exit) = crate::reaper::Reaper::global()
            .spawn(
                Command::new("sh")
                    .args(["-c", "sleep 30 & sleep 30 & echo ready; wait"])
                    .stdout(Stdio::piped())
                    .process_group(0),
            )
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        let found = descendants(child.id());
        assert!(!found.is_empty() && found.iter().all(|p| p.pgid == child.id()), "{found:?}");
        // Our own group is never signalled, whatever a found process claims.
        // SAFETY: plain syscall.
        let ours = unsafe { libc::getpgrp() } as u32;
        signal_groups(&[Proc { pid: 0, start: 0, pgid: ours }], libc::SIGKILL);
        signal_groups(&found, libc::SIGKILL);
        // The shell was not among `found` (not its own descendant) yet shares their group.
        assert_eq!(exit.wait_blocking(), crate::reaper::ExitStatus::Signaled(libc::SIGKILL));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while found.iter().any(|p| is_alive(*p)) {
            assert!(std::time::Instant::now() < deadline, "{found:?}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn walks_the_real_tree_including_setsid() {
        use std::process::{Command, Stdio};
        let (mut child, exit) = crate::reaper::Reaper::global()
            .spawn(
                Command::new("sh")
                    .args(["-c", "setsid sleep 30 & sleep 30 & echo ready; wait"])
                    .stdout(Stdio::piped()),
            )
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let found = loop {
            let found = descendants(child.id());
            if found.len() >= 2 || std::time::Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(found.len() >= 2, "{found:?}");
        for p in &found {
            assert!(is_alive(*p));
            signal(*p, libc::SIGKILL);
        }
        assert_eq!(exit.wait_blocking().api_code(), 0);
        assert!(identify(child.id()).is_none_or(|p| !is_alive(p)));
    }
}
