//! What the daemon's own control group allows and uses: CPU and memory limits, memory usage and
//! page cache, cumulative CPU time — with the host's figures from `/proc` where no cgroup says.
//!
//! The daemon runs as PID 1 of the sandbox, so its cgroup *is* the sandbox's: its limits are
//! what a user of the sandbox can actually get, which the host's totals (the machine the
//! container runs on) are not. Both cgroup layouts are read:
//!
//! * **v2 (unified)**: one hierarchy; `/proc/self/cgroup` has a `0::<path>` line.
//! * **v1**: one hierarchy per controller (`cpu`, `cpuacct`, `cpuset`, `memory`, sometimes
//!   co-mounted as `cpu,cpuacct`); `/proc/self/cgroup` has one line per hierarchy.
//! * **hybrid**: v1 controllers plus an (often empty) v2 hierarchy. A controller is read from
//!   the hierarchy it is attached to: from v1 when some v1 mount carries it, else from v2.
//!
//! Where the hierarchies are mounted comes from `/proc/self/mountinfo`, not from a fixed
//! `/sys/fs/cgroup/...` guess, and each mount's *root* is taken into account: inside a
//! container the mount may show only the container's own subtree while `/proc/self/cgroup`
//! names the full path (or, with a cgroup namespace, `/`). Without a readable mountinfo the
//! conventional layout under `/sys/fs/cgroup` is assumed.
//!
//! Every reader takes its files under a *root directory* (`/` in production) so tests can build
//! fake v1, v2 and hybrid trees in a temporary directory. Nothing here is cached: a limit that
//! the runner changes on a live sandbox shows up at the next call.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// v1 writes "no memory limit" as the largest page-aligned `i64`; anything at or above it is
/// no limit (the reference uses the same bound).
const V1_MEMORY_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// The daemon's cgroup: where each controller's files are, in whichever hierarchy holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    root: PathBuf,
    /// The cgroup's directory in the v2 hierarchy, and that hierarchy's mount point (the walk up
    /// for inherited limits stops there).
    unified: Option<Location>,
    /// The cgroup's directory in each v1 hierarchy that carries one of the controllers read here.
    cpu: Option<Location>,
    cpuacct: Option<Location>,
    cpuset: Option<Location>,
    memory: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    dir: PathBuf,
    mount: PathBuf,
}

impl Location {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The cgroup's directory, then each parent up to the mount point: a limit set on a parent
    /// (a systemd slice, the container's cgroup above a nested one) binds this cgroup too.
    fn ancestry(&self) -> impl Iterator<Item = &Path> {
        self.dir.ancestors().take_while(|d| d.starts_with(&self.mount))
    }
}

/// Which hierarchy a controller's files come from.
#[derive(Clone, Copy)]
enum Hierarchy<'a> {
    V1(&'a Location),
    V2(&'a Location),
}

impl Cgroup {
    /// The cgroup of the running process, as seen from `/`.
    pub fn current() -> Cgroup {
        Cgroup::discover(Path::new("/"))
    }

    /// The cgroup described by `<root>/proc/self/cgroup` and `<root>/proc/self/mountinfo`, with
    /// every mount point taken under `root`.
    pub fn discover(root: &Path) -> Cgroup {
        let memberships = std::fs::read_to_string(root.join("proc/self/cgroup"))
            .map(|s| parse_proc_cgroup(&s))
            .unwrap_or_default();
        let mounts = match std::fs::read_to_string(root.join("proc/self/mountinfo")) {
            Ok(s) => parse_mountinfo(&s),
            Err(_) => conventional_mounts(root),
        };
        let mut cg = Cgroup {
            root: root.to_path_buf(),
            unified: None,
            cpu: None,
            cpuacct: None,
            cpuset: None,
            memory: None,
        };
        for mount in &mounts {
            let Some(path) = memberships.iter().find(|m| m.matches(mount)).map(|m| m.path.as_str()) else {
                continue;
            };
            let loc = locate(root, mount, path);
            if mount.v2 {
                cg.unified.get_or_insert(loc);
                continue;
            }
            for c in &mount.controllers {
                let slot = match c.as_str() {
                    "cpu" => &mut cg.cpu,
                    "cpuacct" => &mut cg.cpuacct,
                    "cpuset" => &mut cg.cpuset,
                    "memory" => &mut cg.memory,
                    _ => continue,
                };
                slot.get_or_insert_with(|| loc.clone());
            }
        }
        cg
    }

    /// A v1 mount of the controller wins; otherwise the v2 hierarchy (on a hybrid host the v2
    /// tree exists but has no controllers; its files are then simply absent).
    fn hierarchy<'a>(&'a self, v1: &'a Option<Location>) -> Option<Hierarchy<'a>> {
        match (v1, &self.unified) {
            (Some(l), _) => Some(Hierarchy::V1(l)),
            (None, Some(l)) => Some(Hierarchy::V2(l)),
            (None, None) => None,
        }
    }

    /// The CPU bandwidth limit in cores (quota ÷ period), the smallest along the cgroup's
    /// ancestry; `None` when no quota is set. v2: `cpu.max` = `<quota|max> <period>`; v1:
    /// `cpu.cfs_quota_us` (-1 = none) and `cpu.cfs_period_us`.
    pub fn cpu_quota(&self) -> Option<f64> {
        let quota_at = |dir: &Path, v2: bool| -> Option<f64> {
            let (quota, period) = if v2 {
                let s = read(&dir.join("cpu.max"))?;
                let mut f = s.split_whitespace();
                let quota = f.next()?;
                if quota == "max" {
                    return None;
                }
                (quota.parse::<i64>().ok()?, f.next().unwrap_or("100000").parse::<i64>().ok()?)
            } else {
                (read_int(&dir.join("cpu.cfs_quota_us"))?, read_int(&dir.join("cpu.cfs_period_us"))?)
            };
            (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
        };
        let (loc, v2) = match self.hierarchy(&self.cpu)? {
            Hierarchy::V1(l) => (l, false),
            Hierarchy::V2(l) => (l, true),
        };
        loc.ancestry().filter_map(|d| quota_at(d, v2)).reduce(f64::min)
    }

    /// How many CPUs the cpuset lets the cgroup run on; `None` when no cpuset is visible. v2:
    /// `cpuset.cpus.effective`; v1: `cpuset.effective_cpus`, else `cpuset.cpus`.
    pub fn cpuset_cpus(&self) -> Option<usize> {
        let text = match self.hierarchy(&self.cpuset)? {
            Hierarchy::V2(l) => read(&l.file("cpuset.cpus.effective"))?,
            Hierarchy::V1(l) => {
                read(&l.file("cpuset.effective_cpus")).or_else(|| read(&l.file("cpuset.cpus")))?
            }
        };
        count_cpu_list(&text).filter(|&n| n > 0)
    }

    /// The memory limit in bytes, the smallest along the cgroup's ancestry; `None` when there
    /// is none. v2: `memory.max` (`max` = none); v1: `memory.limit_in_bytes`, where the
    /// "unlimited" value is a huge number.
    pub fn memory_limit(&self) -> Option<u64> {
        let (loc, name) = match self.hierarchy(&self.memory)? {
            Hierarchy::V2(l) => (l, "memory.max"),
            Hierarchy::V1(l) => (l, "memory.limit_in_bytes"),
        };
        loc.ancestry()
            .filter_map(|d| read(&d.join(name))?.trim().parse::<u64>().ok())
            .filter(|&b| b < V1_MEMORY_UNLIMITED)
            .min()
    }

    /// Where the cgroup counts the processes the out-of-memory killer ended, and the key of
    /// that line: v2 `memory.events` `oom_kill` (this cgroup and those below it); v1
    /// `memory.oom_control` `oom_kill` (kernels since 4.13). `None` without a memory controller.
    pub fn oom_kill_counter(&self) -> Option<PathBuf> {
        match self.hierarchy(&self.memory)? {
            Hierarchy::V2(l) => Some(l.file("memory.events")),
            Hierarchy::V1(l) => Some(l.file("memory.oom_control")),
        }
    }

    /// Memory charged to the cgroup in bytes, page cache included. v2: `memory.current`; v1:
    /// `memory.usage_in_bytes`. Absent in a v2 root cgroup.
    pub fn memory_usage(&self) -> Option<u64> {
        match self.hierarchy(&self.memory)? {
            Hierarchy::V2(l) => read_int(&l.file("memory.current")),
            Hierarchy::V1(l) => read_int(&l.file("memory.usage_in_bytes")),
        }
    }

    /// The page cache (file-backed memory) within [`Cgroup::memory_usage`], in bytes. v2: the
    /// `file` line of `memory.stat`; v1: `total_cache` (which, like `usage_in_bytes`, includes
    /// child cgroups), else `cache`.
    pub fn memory_cache(&self) -> Option<u64> {
        match self.hierarchy(&self.memory)? {
            Hierarchy::V2(l) => stat_value(&read(&l.file("memory.stat"))?, "file"),
            Hierarchy::V1(l) => {
                let stat = read(&l.file("memory.stat"))?;
                stat_value(&stat, "total_cache").or_else(|| stat_value(&stat, "cache"))
            }
        }
    }

    /// CPU time consumed by the cgroup's tasks since it was created. v2: `usage_usec` in
    /// `cpu.stat` (present even without the cpu controller); v1: `cpuacct.usage` (ns).
    pub fn cpu_usage(&self) -> Option<Duration> {
        match self.hierarchy(&self.cpuacct)? {
            Hierarchy::V2(l) => {
                stat_value(&read(&l.file("cpu.stat"))?, "usage_usec").map(Duration::from_micros)
            }
            Hierarchy::V1(l) => read_int(&l.file("cpuacct.usage")).map(Duration::from_nanos),
        }
    }

    /// The CPUs the sandbox may use, in cores: the quota, capped by the cpuset and by the CPUs
    /// the process may be scheduled on; the latter alone when there is no quota.
    pub fn cpu_limit(&self) -> f64 {
        let cpus = self.cpuset_cpus().map_or(host_cpus(), |n| n.min(host_cpus())) as f64;
        self.cpu_quota().map_or(cpus, |q| q.min(cpus))
    }

    /// Memory as the sandbox sees it: the cgroup's figures, the host's where the cgroup has
    /// none (no limit, or a v2 root cgroup without `memory.current`).
    pub fn memory(&self) -> Memory {
        let host = host_memory(&self.root).unwrap_or_default();
        // A limit above the machine's memory cannot be reached; the machine is the bound then.
        let total = match self.memory_limit() {
            Some(limit) if host.total > 0 => limit.min(host.total),
            Some(limit) => limit,
            None => host.total,
        };
        match self.memory_usage() {
            Some(used) => Memory { total, used, cache: self.memory_cache().unwrap_or(0) },
            // The host's "used" is counted the way memory.current counts: page cache included,
            // so `used - cache` means the same whichever source answered.
            None => Memory {
                total,
                used: host.total.saturating_sub(host.free),
                cache: host.cached + host.buffers,
            },
        }
    }

    /// Cumulative CPU time of the sandbox: the cgroup's counter, else the host's busy time.
    pub fn cpu_time(&self) -> Option<Duration> {
        self.cpu_usage().or_else(|| host_cpu_time(&self.root))
    }
}

/// Memory figures in bytes. `used` includes `cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub total: u64,
    pub used: u64,
    pub cache: u64,
}

/// CPU utilisation in percent of `cores` between two readings of a cumulative CPU-time counter
/// taken `wall` apart. `None` when it cannot be told: no time passed, the counter went
/// backwards (the process moved to another cgroup, or the counter was reset), or no cores.
/// Clamped to 0..=100: the counter and the clock are read at slightly different instants.
pub fn cpu_percent(before: Duration, after: Duration, wall: Duration, cores: f64) -> Option<f64> {
    if wall.is_zero() || after < before || cores <= 0.0 || !cores.is_finite() {
        return None;
    }
    let pct = (after - before).as_secs_f64() / wall.as_secs_f64() / cores * 100.0;
    Some(pct.clamp(0.0, 100.0))
}

/// `ceil` of a core count, at least 1: what `cpuCount` reports for a fractional limit.
pub fn whole_cpus(cores: f64) -> u64 {
    if cores.is_finite() && cores > 0.0 { cores.ceil() as u64 } else { 1 }
}

/// The host's `/proc/meminfo` figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostMemory {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub cached: u64,
    pub buffers: u64,
}

/// `<root>/proc/meminfo`, whose values are in KiB.
pub fn host_memory(root: &Path) -> Option<HostMemory> {
    let text = read(&root.join("proc/meminfo"))?;
    let kib = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |v| v.saturating_mul(1024))
    };
    let total = kib("MemTotal");
    (total > 0).then(|| HostMemory {
        total,
        free: kib("MemFree"),
        available: kib("MemAvailable"),
        cached: kib("Cached"),
        buffers: kib("Buffers"),
    })
}

/// The host's busy CPU time from the `cpu` line of `<root>/proc/stat`: user, nice, system, irq,
/// softirq and steal ticks (guest time is already inside user; idle and iowait are not busy).
pub fn host_cpu_time(root: &Path) -> Option<Duration> {
    let text = read(&root.join("proc/stat"))?;
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map_while(|f| f.parse().ok()).collect();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    if ticks.len() < 4 {
        return None;
    }
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let hz = clock_ticks_per_second();
    Some(Duration::from_nanos(busy.saturating_mul(1_000_000_000) / hz))
}

/// The unit of `/proc/stat` (USER_HZ), 100 on every common kernel.
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the C library; it has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// CPUs this process may be scheduled on (its affinity mask, which a cpuset also narrows).
/// Not `available_parallelism`: that already applies the cgroup quota, which is read here on
/// its own so it can be reported.
pub fn host_cpus() -> usize {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => set.count().max(1) as usize,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

// ---------------------------------------------------------------------------------- parsing

/// One line of `/proc/self/cgroup`: `<id>:<controllers>:<path>`.
#[derive(Debug)]
struct Membership {
    /// Empty for the v2 line (`0::/path`); v1 controllers otherwise (`cpu,cpuacct`,
    /// `name=systemd`).
    controllers: Vec<String>,
    path: String,
}

impl Membership {
    fn matches(&self, mount: &Mount) -> bool {
        if mount.v2 {
            self.controllers.is_empty()
        } else {
            !self.controllers.is_empty() && mount.controllers.iter().any(|c| self.controllers.contains(c))
        }
    }
}

fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let _id = f.next()?;
            let controllers = f.next()?;
            let path = f.next()?;
            Some(Membership {
                controllers: controllers.split(',').filter(|c| !c.is_empty()).map(String::from).collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// A cgroup filesystem mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
struct Mount {
    /// The cgroup the mount shows at its mount point (`/` unless a container got a subtree).
    root: String,
    point: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

/// `<id> <parent> <maj:min> <root> <mount point> <options> [optional…] - <fstype> <source>
/// <super options>`; v1 mounts list their controllers among the super options.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let options = right.next().unwrap_or("");
            let (root, point) = (unescape(left.get(3)?), unescape(left.get(4)?));
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                options.split(',').filter(|o| !matches!(*o, "rw" | "ro")).map(String::from).collect()
            };
            Some(Mount { root, point: PathBuf::from(point), v2, controllers })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = (b[i] == b'\\' && i + 3 < b.len())
            .then(|| &b[i + 1..i + 4])
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::try_from(d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'))).ok());
        if let Some(byte) = octal {
            out.push(byte);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Without mountinfo: v2 at `/sys/fs/cgroup` when it has `cgroup.controllers`, else one v1
/// hierarchy per controller directory under it.
fn conventional_mounts(root: &Path) -> Vec<Mount> {
    let base = Path::new("/sys/fs/cgroup");
    let under = root.join("sys/fs/cgroup");
    if under.join("cgroup.controllers").exists() {
        return vec![Mount { root: "/".into(), point: base.into(), v2: true, controllers: Vec::new() }];
    }
    ["cpu", "cpuacct", "cpuset", "memory"]
        .iter()
        .filter(|c| under.join(c).is_dir())
        .map(|c| Mount { root: "/".into(), point: base.join(c), v2: false, controllers: vec![c.to_string()] })
        .collect()
}

/// The directory of the cgroup at `path` (from `/proc/self/cgroup`) inside `mount`. When the
/// mount shows a subtree (its root is the container's cgroup) the path is taken relative to that
/// root; a path outside the mount's root (another cgroup namespace) or a directory that does
/// not exist falls back to the mount point, which is then the closest view of our cgroup.
fn locate(root: &Path, mount: &Mount, path: &str) -> Location {
    let point = under_root(root, &mount.point);
    let relative = if mount.root == "/" {
        Some(path)
    } else {
        path.strip_prefix(mount.root.as_str()).filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let dir = relative
        .map(|rel| point.join(rel.trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| point.clone());
    Location { dir, mount: point }
}

fn under_root(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// A CPU list such as `0-3,8,10-11` → 7.
fn count_cpu_list(text: &str) -> Option<usize> {
    let mut n = 0;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?);
                b.checked_sub(a)? + 1
            }
            None => part.trim().parse::<usize>().map(|_| 1).ok()?,
        };
    }
    Some(n)
}

/// The value of `key` in a flat-keyed stat file (`<key> <value>` lines).
fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()? == key).then(|| f.next()?.parse().ok())?
    })
}

/// The `oom_kill` line of a cgroup's memory events file (see [`Cgroup::oom_kill_counter`]), or
/// of `/proc/vmstat`.
pub fn read_oom_kills(p: &Path) -> Option<u64> {
    stat_value(&read(p)?, "oom_kill")
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn read_int<T: std::str::FromStr>(p: &Path) -> Option<T> {
    read(p)?.trim().parse().ok()
}

#[cfg(test)]
mod tests;
