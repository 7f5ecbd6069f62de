//! A live resource snapshot of the sandbox: CPU and memory within the daemon's cgroup limits,
//! and the root file system.
//!
//! Limits and memory are read at each call, so a limit the runner changes on a live sandbox
//! shows up at once. CPU utilisation needs two readings of a cumulative counter some time
//! apart; a background task takes one per [`SAMPLE_INTERVAL`] (a single small file read), so a
//! call answers at once with the utilisation over the last interval.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::cgroup::{self, Cgroup};

/// How often the CPU counter is read: utilisation is the average over this long.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// One snapshot. Byte counts are bytes; a figure that cannot be read is 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Whole CPUs the sandbox may use: the quota rounded up (1.5 CPUs → 2), else the CPUs the
    /// daemon may run on.
    pub cpu_count: u64,
    /// Utilisation over the last sample interval, in percent of the (fractional) CPU limit;
    /// 0 until two samples exist.
    pub cpu_used_pct: f64,
    /// The memory limit, else the machine's memory.
    pub mem_total: u64,
    /// Memory charged to the sandbox, page cache included.
    pub mem_used: u64,
    /// The page cache within `mem_used`.
    pub mem_cache: u64,
    pub disk_total: u64,
    pub disk_used: u64,
    pub disk_free: u64,
    pub timestamp: Timestamp,
}

/// The metrics service: where the cgroup files are, and the CPU sampler's state.
pub struct Metrics {
    /// `/` in production; a fake tree in tests.
    root: PathBuf,
    /// The file system whose usage is reported (the sandbox's root).
    disk: PathBuf,
    sampler: Mutex<Sampler>,
    started: AtomicBool,
}

/// The last counter reading and the interval before it.
#[derive(Debug)]
struct Sampler {
    cgroup: Cgroup,
    last: Option<(Duration, Instant)>,
    /// CPU time used and wall time elapsed over the last interval.
    interval: Option<(Duration, Duration)>,
}

impl Sampler {
    fn take(&mut self, cpu: Option<Duration>, now: Instant) {
        self.interval = match (self.last, cpu) {
            // A counter that went backwards (the cgroup was replaced) has no meaning as a delta;
            // the next interval starts from the new reading.
            (Some((before, at)), Some(after)) if after >= before && now > at => {
                Some((after - before, now - at))
            }
            _ => None,
        };
        self.last = cpu.map(|c| (c, now));
    }

    /// Follows the daemon into another cgroup (the runner moved it): readings of the old one
    /// would mix two counters, so sampling starts over.
    fn follow(&mut self, cgroup: Cgroup) {
        if cgroup != self.cgroup {
            *self = Sampler { cgroup, last: None, interval: None };
        }
    }
}

impl Metrics {
    /// The metrics of the running process's cgroup and of `/`.
    pub fn new() -> Self {
        Self::with_root(Path::new("/"), Path::new("/"))
    }

    /// The metrics of the cgroup found under `root` (see [`crate::cgroup`]) and of the file
    /// system holding `disk`.
    pub fn with_root(root: &Path, disk: &Path) -> Self {
        Metrics {
            root: root.to_path_buf(),
            disk: disk.to_path_buf(),
            sampler: Mutex::new(Sampler { cgroup: Cgroup::discover(root), last: None, interval: None }),
            started: AtomicBool::new(false),
        }
    }

    /// Starts the CPU sampler on the current tokio runtime, once; later calls do nothing. It
    /// ends with the runtime.
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            // After a stall (a suspended sandbox), one reading, not a burst of catch-up reads.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(metrics) = weak.upgrade() else { return };
                metrics.sample(Instant::now());
            }
        });
    }

    /// Takes one CPU reading; the interval since the previous one becomes the current figure.
    pub fn sample(&self, now: Instant) {
        let mut s = toolbox_envelope::sync::lock(&self.sampler);
        let cpu = s.cgroup.cpu_time();
        s.take(cpu, now);
    }

    /// The current snapshot. Reads the limits, memory and disk now; CPU utilisation is the
    /// sampler's last interval measured against the limit as it is now.
    pub fn snapshot(&self) -> Snapshot {
        let cgroup = Cgroup::discover(&self.root);
        let cores = cgroup.cpu_limit();
        let memory = cgroup.memory();
        let interval = {
            let mut s = toolbox_envelope::sync::lock(&self.sampler);
            s.follow(cgroup);
            s.interval
        };
        let cpu_used_pct = interval
            .and_then(|(cpu, wall)| cgroup::cpu_percent(Duration::ZERO, cpu, wall, cores))
            .unwrap_or(0.0);
        let disk = disk_usage(&self.disk).unwrap_or_default();
        Snapshot {
            cpu_count: cgroup::whole_cpus(cores),
            // Two decimals are all a percentage needs; the rest is sampling noise.
            cpu_used_pct: (cpu_used_pct * 100.0).round() / 100.0,
            mem_total: memory.total,
            mem_used: memory.used,
            mem_cache: memory.cache,
            disk_total: disk.total,
            disk_used: disk.used,
            disk_free: disk.free,
            timestamp: Timestamp::now(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Disk {
    total: u64,
    used: u64,
    free: u64,
}

/// `statvfs` of the file system holding `path`, in fragment-size units as statvfs defines them.
/// `free` is what an unprivileged user may still write (`f_bavail`); `used` counts every
/// allocated block (`f_blocks - f_bfree`), so `used + free` may fall short of `total` by the
/// blocks reserved for root.
fn disk_usage(path: &Path) -> Option<Disk> {
    let st = rustix::fs::statvfs(path).ok()?;
    let unit = st.f_frsize;
    Some(Disk {
        total: st.f_blocks.saturating_mul(unit),
        used: st.f_blocks.saturating_sub(st.f_bfree).saturating_mul(unit),
        free: st.f_bavail.saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_tree(quota: &str, usage_ns: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("proc/self/cgroup", "4:memory:/box\n3:cpu,cpuacct:/box\n".to_string()),
            (
                "proc/self/mountinfo",
                "31 23 0:31 / /cg/cpu rw - cgroup cgroup rw,cpu,cpuacct\n\
                 32 23 0:32 / /cg/memory rw - cgroup cgroup rw,memory\n"
                    .to_string(),
            ),
            ("proc/meminfo", "MemTotal: 4000000 kB\nMemFree: 1000000 kB\n".to_string()),
            ("cg/cpu/box/cpu.cfs_quota_us", format!("{quota}\n")),
            ("cg/cpu/box/cpu.cfs_period_us", "100000\n".to_string()),
            ("cg/cpu/box/cpuacct.usage", format!("{usage_ns}\n")),
            ("cg/memory/box/memory.limit_in_bytes", "1073741824\n".to_string()),
            ("cg/memory/box/memory.usage_in_bytes", "104857600\n".to_string()),
            ("cg/memory/box/memory.stat", "cache 10485760\ntotal_cache 20971520\n".to_string()),
        ];
        for (p, c) in files {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        dir
    }

    fn set_usage(dir: &Path, ns: u64) {
        std::fs::write(dir.join("cg/cpu/box/cpuacct.usage"), format!("{ns}\n")).unwrap();
    }

    #[test]
    fn limits_memory_and_disk_come_from_the_cgroup_and_statvfs() {
        let t = v1_tree("150000", "0");
        let m = Metrics::with_root(t.path(), t.path());
        let s = m.snapshot();
        if cgroup::host_cpus() >= 2 {
            assert_eq!(s.cpu_count, 2, "ceil(1.5)");
        }
        assert_eq!((s.mem_total, s.mem_used, s.mem_cache), (1 << 30, 100 << 20, 20 << 20));
        assert_eq!(s.cpu_used_pct, 0.0, "no samples yet");
        let st = rustix::fs::statvfs(t.path()).unwrap();
        assert_eq!(s.disk_total, st.f_blocks * st.f_frsize);
        assert!(s.disk_used <= s.disk_total && s.disk_free <= s.disk_total && s.disk_total > 0, "{s:?}");
        assert!((Timestamp::now().as_second() - s.timestamp.as_second()).abs() <= 1);
    }

    #[test]
    fn cpu_percent_is_the_last_interval_against_the_limit_read_now() {
        let t = v1_tree("50000", "1000000000");
        let m = Metrics::with_root(t.path(), t.path());
        let t0 = Instant::now();
        m.sample(t0);
        assert_eq!(m.snapshot().cpu_used_pct, 0.0, "one reading is no interval");
        // 0.25 s of CPU over 1 s under a 0.5-CPU quota: 50 %.
        set_usage(t.path(), 1_250_000_000);
        m.sample(t0 + Duration::from_secs(1));
        assert_eq!(m.snapshot().cpu_used_pct, 50.0);
        // The runner doubles the quota: the same interval is 25 % of the new limit.
        std::fs::write(t.path().join("cg/cpu/box/cpu.cfs_quota_us"), "100000\n").unwrap();
        assert_eq!(m.snapshot().cpu_used_pct, 25.0);
        // An idle interval reads 0.
        m.sample(t0 + Duration::from_secs(2));
        assert_eq!(m.snapshot().cpu_used_pct, 0.0);
        // A counter that went back: no figure until the next interval.
        set_usage(t.path(), 5);
        m.sample(t0 + Duration::from_secs(3));
        assert_eq!(m.snapshot().cpu_used_pct, 0.0);
        set_usage(t.path(), 5 + 100_000_000);
        m.sample(t0 + Duration::from_secs(4));
        assert_eq!(m.snapshot().cpu_used_pct, 10.0);
        // Never above 100 %, however the readings fall.
        set_usage(t.path(), 5 + 100_000_000 + 3_000_000_000);
        m.sample(t0 + Duration::from_secs(5));
        assert_eq!(m.snapshot().cpu_used_pct, 100.0);
    }

    #[test]
    fn moving_to_another_cgroup_restarts_sampling() {
        let t = v1_tree("100000", "0");
        let m = Metrics::with_root(t.path(), t.path());
        let t0 = Instant::now();
        m.sample(t0);
        set_usage(t.path(), 500_000_000);
        m.sample(t0 + Duration::from_secs(1));
        assert_eq!(m.snapshot().cpu_used_pct, 50.0);
        // The daemon is moved to /other (no quota there, a counter of its own).
        let other = t.path().join("cg/cpu/other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("cpuacct.usage"), "9000000000\n").unwrap();
        std::fs::write(t.path().join("proc/self/cgroup"), "4:memory:/box\n3:cpu,cpuacct:/other\n").unwrap();
        assert_eq!(m.snapshot().cpu_used_pct, 0.0, "the old interval is not measured against a new cgroup");
        m.sample(t0 + Duration::from_secs(2));
        assert_eq!(m.snapshot().cpu_used_pct, 0.0);
        std::fs::write(other.join("cpuacct.usage"), "9100000000\n").unwrap();
        m.sample(t0 + Duration::from_secs(3));
        let expected = 10.0 / cgroup::host_cpus() as f64;
        assert_eq!(m.snapshot().cpu_used_pct, (expected * 100.0).round() / 100.0);
    }

    #[tokio::test]
    async fn the_sampler_ticks_in_the_background() {
        let t = v1_tree("100000", "0");
        let m = Arc::new(Metrics::with_root(t.path(), t.path()));
        m.start();
        m.start(); // idempotent: a second task would halve the interval
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(toolbox_envelope::sync::lock(&m.sampler).last.is_some(), "the first reading is at once");
        set_usage(t.path(), 200_000_000);
        tokio::time::sleep(SAMPLE_INTERVAL).await;
        let interval = toolbox_envelope::sync::lock(&m.sampler).interval;
        let (cpu, wall) = interval.expect("a second reading after one interval");
        assert_eq!(cpu, Duration::from_millis(200));
        assert!(
            wall >= SAMPLE_INTERVAL - Duration::from_millis(50) && wall < SAMPLE_INTERVAL * 2,
            "{wall:?}"
        );
        let pct = m.snapshot().cpu_used_pct;
        assert!(pct > 10.0 && pct < 21.0, "0.2 s of CPU in about 1 s under a 1-CPU quota: {pct}");
    }
}
