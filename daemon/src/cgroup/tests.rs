//! Fake cgroup trees (v1, v2, hybrid, containers' subtree mounts) in temporary directories.

use std::time::Duration;

use super::*;

const GIB: u64 = 1 << 30;
const MEMINFO: &str = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\n\
                       MemAvailable:    5000000 kB\nBuffers:          100000 kB\n\
                       Cached:          2000000 kB\nSwapCached:            0 kB\n";

/// Writes `files` (path relative to the tree's root → content) and returns the tree.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn mountinfo_line(id: u32, root: &str, point: &str, fstype: &str, opts: &str) -> String {
    format!(
        "{id} 23 0:{id} {root} {point} rw,nosuid,nodev,noexec,relatime shared:{id} - {fstype} {fstype} {opts}\n"
    )
}

fn v2_tree(cgroup_path: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let mountinfo = mountinfo_line(30, "/", "/sys/fs/cgroup", "cgroup2", "rw,nsdelegate");
    let proc_cgroup = format!("0::{cgroup_path}\n");
    let mut all: Vec<(&str, &str)> = vec![
        ("proc/self/cgroup", &proc_cgroup),
        ("proc/self/mountinfo", &mountinfo),
        ("proc/meminfo", MEMINFO),
        ("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n"),
    ];
    all.extend_from_slice(files);
    tree(&all)
}

#[test]
fn v2_limits_usage_cache_and_cpu_time() {
    let t = v2_tree(
        "/sandbox",
        &[
            ("sys/fs/cgroup/sandbox/cpu.max", "150000 100000\n"),
            ("sys/fs/cgroup/sandbox/cpuset.cpus.effective", "0-3\n"),
            ("sys/fs/cgroup/sandbox/memory.max", "536870912\n"),
            ("sys/fs/cgroup/sandbox/memory.current", "123456789\n"),
            ("sys/fs/cgroup/sandbox/memory.stat", "anon 1000\nfile 4096000\nkernel 5\nfile_mapped 7\n"),
            ("sys/fs/cgroup/sandbox/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"),
        ],
    );
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), Some(1.5));
    assert_eq!(cg.cpuset_cpus(), Some(4));
    assert_eq!(cg.memory_limit(), Some(512 << 20));
    assert_eq!(cg.memory_usage(), Some(123456789));
    assert_eq!(cg.memory_cache(), Some(4096000), "the `file` line, not `file_mapped`");
    assert_eq!(cg.cpu_usage(), Some(Duration::from_micros(2_500_000)));
    assert_eq!(cg.cpu_time(), Some(Duration::from_millis(2500)));
    assert_eq!(cg.memory(), Memory { total: 512 << 20, used: 123456789, cache: 4096000 });
    if host_cpus() >= 2 {
        assert_eq!(cg.cpu_limit(), 1.5);
        assert_eq!(whole_cpus(cg.cpu_limit()), 2);
    }
}

#[test]
fn v2_max_means_no_limit_and_a_parent_limit_binds_the_child() {
    // The child has no quota of its own ("max"); the slice above it has 0.5 CPU and 1 GiB.
    let t = v2_tree(
        "/slice/sandbox",
        &[
            ("sys/fs/cgroup/cpu.stat", "usage_usec 1\n"),
            ("sys/fs/cgroup/slice/cpu.max", "50000 100000\n"),
            ("sys/fs/cgroup/slice/memory.max", "1073741824\n"),
            ("sys/fs/cgroup/slice/sandbox/cpu.max", "max 100000\n"),
            ("sys/fs/cgroup/slice/sandbox/memory.max", "max\n"),
        ],
    );
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), Some(0.5));
    assert_eq!(cg.cpu_limit(), 0.5);
    assert_eq!(whole_cpus(cg.cpu_limit()), 1);
    assert_eq!(cg.memory_limit(), Some(GIB));

    // With nothing set anywhere: no quota, no memory limit; the host is the bound.
    let t = v2_tree(
        "/sandbox",
        &[("sys/fs/cgroup/sandbox/cpu.max", "max 100000\n"), ("sys/fs/cgroup/sandbox/memory.max", "max\n")],
    );
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), None);
    assert_eq!(cg.cpu_limit(), host_cpus() as f64);
    assert_eq!(cg.memory_limit(), None);
    assert_eq!(cg.memory().total, 8_000_000 * 1024, "MemTotal when there is no limit");
}

#[test]
fn a_limit_above_the_machine_is_capped_by_it() {
    let t = v2_tree("/sandbox", &[("sys/fs/cgroup/sandbox/memory.max", "68719476736\n")]);
    assert_eq!(Cgroup::discover(t.path()).memory().total, 8_000_000 * 1024);
}

#[test]
fn v2_root_cgroup_falls_back_to_the_host() {
    // The root cgroup has neither cpu.max, memory.max nor memory.current.
    let t =
        v2_tree("/", &[("sys/fs/cgroup/cpu.stat", "usage_usec 7000000\n"), ("proc/stat", "cpu 1 2 3 4\n")]);
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), None);
    assert_eq!(cg.memory_usage(), None);
    let m = cg.memory();
    assert_eq!(m.total, 8_000_000 * 1024);
    assert_eq!(m.used, 7_000_000 * 1024, "MemTotal - MemFree: cache included, like memory.current");
    assert_eq!(m.cache, 2_100_000 * 1024, "Cached + Buffers");
    assert_eq!(cg.cpu_time(), Some(Duration::from_secs(7)), "the root's cpu.stat still counts");
}

#[test]
fn v1_comounted_cpu_cpuacct_and_memory() {
    let mut mountinfo = mountinfo_line(31, "/", "/sys/fs/cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct");
    mountinfo += &mountinfo_line(32, "/", "/sys/fs/cgroup/memory", "cgroup", "rw,memory");
    mountinfo += &mountinfo_line(33, "/", "/sys/fs/cgroup/cpuset", "cgroup", "rw,cpuset");
    mountinfo += &mountinfo_line(34, "/", "/sys/fs/cgroup/systemd", "cgroup", "rw,xattr,name=systemd");
    let t = tree(&[
        (
            "proc/self/cgroup",
            "5:cpuset:/box\n4:memory:/box\n3:cpu,cpuacct:/box\n1:name=systemd:/init.scope\n",
        ),
        ("proc/self/mountinfo", &mountinfo),
        ("proc/meminfo", MEMINFO),
        ("sys/fs/cgroup/cpu,cpuacct/box/cpu.cfs_quota_us", "250000\n"),
        ("sys/fs/cgroup/cpu,cpuacct/box/cpu.cfs_period_us", "100000\n"),
        ("sys/fs/cgroup/cpu,cpuacct/box/cpuacct.usage", "987654321\n"),
        ("sys/fs/cgroup/cpuset/box/cpuset.cpus", "0,2-3\n"),
        ("sys/fs/cgroup/memory/box/memory.limit_in_bytes", "268435456\n"),
        ("sys/fs/cgroup/memory/box/memory.usage_in_bytes", "200000000\n"),
        ("sys/fs/cgroup/memory/box/memory.stat", "cache 1000\nrss 5\ntotal_cache 3000\ntotal_rss 9\n"),
    ]);
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), Some(2.5));
    assert_eq!(cg.cpuset_cpus(), Some(3));
    assert_eq!(cg.cpu_usage(), Some(Duration::from_nanos(987654321)));
    assert_eq!(cg.memory(), Memory { total: 256 << 20, used: 200000000, cache: 3000 });
}

#[test]
fn v1_unlimited_values_are_no_limit() {
    let mut mountinfo = mountinfo_line(31, "/", "/sys/fs/cgroup/cpu", "cgroup", "rw,cpu");
    mountinfo += &mountinfo_line(32, "/", "/sys/fs/cgroup/memory", "cgroup", "rw,memory");
    let t = tree(&[
        ("proc/self/cgroup", "4:memory:/\n3:cpu:/\n"),
        ("proc/self/mountinfo", &mountinfo),
        ("proc/meminfo", MEMINFO),
        ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
        ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
        ("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
        ("sys/fs/cgroup/memory/memory.usage_in_bytes", "4096\n"),
        ("sys/fs/cgroup/memory/memory.stat", "cache 1024\n"),
    ]);
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), None);
    assert_eq!(cg.memory_limit(), None);
    assert_eq!(cg.memory(), Memory { total: 8_000_000 * 1024, used: 4096, cache: 1024 });
}

#[test]
fn hybrid_reads_controllers_from_v1_and_ignores_the_empty_unified_tree() {
    // Like a systemd "hybrid" host: v1 controllers, each on its own mount, and cgroup2 at
    // /sys/fs/cgroup/unified with no controllers (its cpu.stat must not replace cpuacct).
    let mut mountinfo = mountinfo_line(31, "/", "/sys/fs/cgroup", "tmpfs", "rw,mode=755");
    for (i, c) in ["cpu", "cpuacct", "cpuset", "memory"].iter().enumerate() {
        mountinfo +=
            &mountinfo_line(32 + i as u32, "/", &format!("/sys/fs/cgroup/{c}"), "cgroup", &format!("rw,{c}"));
    }
    mountinfo += &mountinfo_line(40, "/", "/sys/fs/cgroup/unified", "cgroup2", "rw");
    let t = tree(&[
        ("proc/self/cgroup", "4:memory:/api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"),
        ("proc/self/mountinfo", &mountinfo),
        ("proc/meminfo", MEMINFO),
        ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
        ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
        ("sys/fs/cgroup/cpuacct/cpuacct.usage", "5000000000\n"),
        ("sys/fs/cgroup/cpuset/cpuset.effective_cpus", "0-1\n"),
        ("sys/fs/cgroup/memory/api/abc/memory.limit_in_bytes", "1073741824\n"),
        ("sys/fs/cgroup/memory/api/abc/memory.usage_in_bytes", "7835648\n"),
        ("sys/fs/cgroup/memory/api/abc/memory.stat", "cache 4743168\nrss 1712128\n"),
        ("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
        ("sys/fs/cgroup/unified/cpu.stat", "usage_usec 1\n"),
    ]);
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_usage(), Some(Duration::from_secs(5)), "cpuacct, not the unified cpu.stat");
    assert_eq!(cg.cpu_quota(), None);
    assert_eq!(cg.cpuset_cpus(), Some(2));
    assert_eq!(cg.memory(), Memory { total: GIB, used: 7835648, cache: 4743168 });
}

#[test]
fn a_container_mount_of_its_own_subtree() {
    // Without a cgroup namespace /proc/self/cgroup names the full path while the container's
    // mount shows only its subtree (mount root = that path).
    let mountinfo = mountinfo_line(31, "/docker/abc", "/sys/fs/cgroup/memory", "cgroup", "rw,memory");
    let t = tree(&[
        ("proc/self/cgroup", "4:memory:/docker/abc\n"),
        ("proc/self/mountinfo", &mountinfo),
        ("sys/fs/cgroup/memory/memory.limit_in_bytes", "104857600\n"),
    ]);
    assert_eq!(Cgroup::discover(t.path()).memory_limit(), Some(100 << 20));

    // With a cgroup namespace the path is "/" and the mount point is the container's cgroup.
    let mountinfo = mountinfo_line(31, "/", "/sys/fs/cgroup", "cgroup2", "rw");
    let t = tree(&[
        ("proc/self/cgroup", "0::/\n"),
        ("proc/self/mountinfo", &mountinfo),
        ("sys/fs/cgroup/memory.max", "104857600\n"),
        ("sys/fs/cgroup/cpu.max", "100000 100000\n"),
    ]);
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.memory_limit(), Some(100 << 20));
    assert_eq!(cg.cpu_quota(), Some(1.0));

    // A path outside the mount's root (another namespace's view): the mount point is used.
    let mountinfo = mountinfo_line(31, "/docker/abc", "/sys/fs/cgroup/memory", "cgroup", "rw,memory");
    let t = tree(&[
        ("proc/self/cgroup", "4:memory:/elsewhere\n"),
        ("proc/self/mountinfo", &mountinfo),
        ("sys/fs/cgroup/memory/memory.limit_in_bytes", "104857600\n"),
    ]);
    assert_eq!(Cgroup::discover(t.path()).memory_limit(), Some(100 << 20));
}

#[test]
fn escaped_mount_points_and_the_conventional_layout_without_mountinfo() {
    let mountinfo = mountinfo_line(31, "/", "/cg\\040root", "cgroup2", "rw");
    let t = tree(&[
        ("proc/self/cgroup", "0::/a\n"),
        ("proc/self/mountinfo", &mountinfo),
        ("cg root/a/memory.max", "4096\n"),
    ]);
    assert_eq!(Cgroup::discover(t.path()).memory_limit(), Some(4096));

    let t = tree(&[
        ("proc/self/cgroup", "0::/a\n"),
        ("sys/fs/cgroup/cgroup.controllers", "cpu memory\n"),
        ("sys/fs/cgroup/a/memory.max", "8192\n"),
    ]);
    assert_eq!(Cgroup::discover(t.path()).memory_limit(), Some(8192));

    let t = tree(&[
        ("proc/self/cgroup", "3:cpu,cpuacct:/b\n"),
        ("sys/fs/cgroup/cpu/b/cpu.cfs_quota_us", "50000\n"),
        ("sys/fs/cgroup/cpu/b/cpu.cfs_period_us", "100000\n"),
    ]);
    assert_eq!(Cgroup::discover(t.path()).cpu_quota(), Some(0.5));
}

#[test]
fn nothing_readable_means_no_limits_and_host_figures() {
    let t =
        tree(&[("proc/meminfo", MEMINFO), ("proc/stat", "cpu  100 20 30 400 50 6 7 8 9 10\ncpu0 1 1 1 1\n")]);
    let cg = Cgroup::discover(t.path());
    assert_eq!(cg.cpu_quota(), None);
    assert_eq!(cg.memory_limit(), None);
    assert_eq!(cg.cpu_limit(), host_cpus() as f64);
    assert_eq!(cg.memory().total, 8_000_000 * 1024);
    // user+nice+system+irq+softirq+steal = 100+20+30+6+7+8 ticks.
    let hz = clock_ticks_per_second();
    assert_eq!(cg.cpu_time(), Some(Duration::from_nanos(171 * 1_000_000_000 / hz)));
    // Garbage files are no value, never a panic.
    let t = tree(&[
        ("proc/self/cgroup", "garbage\n0::/x\n"),
        ("proc/self/mountinfo", "nonsense line\n31 23 0:1 / /c rw - cgroup2 c rw\n"),
        ("c/x/cpu.max", "lots 100000\n"),
        ("c/x/memory.max", "-5\n"),
        ("c/x/memory.stat", "file\n"),
        ("proc/meminfo", "MemTotal: many kB\n"),
        ("proc/stat", "cpu x\n"),
    ]);
    let cg = Cgroup::discover(t.path());
    assert_eq!((cg.cpu_quota(), cg.memory_limit(), cg.memory_cache()), (None, None, None));
    assert_eq!(host_memory(t.path()), None);
    assert_eq!(host_cpu_time(t.path()), None);
}

#[test]
fn cpu_percent_math() {
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    // Half a core busy for one second, on a 2-core limit: 25 %.
    assert_eq!(cpu_percent(s(10), s(10) + ms(500), s(1), 2.0), Some(25.0));
    // A fractional limit: 0.5 s of CPU in 1 s under a 0.5-core quota is all of it.
    assert_eq!(cpu_percent(s(0), ms(500), s(1), 0.5), Some(100.0));
    // Readings a little apart in time cannot report more than the limit.
    assert_eq!(cpu_percent(s(0), ms(2100), s(1), 2.0), Some(100.0));
    assert_eq!(cpu_percent(s(5), s(5), s(1), 2.0), Some(0.0));
    // Unknowable: the counter went back, no time passed, no cores.
    assert_eq!(cpu_percent(s(5), s(4), s(1), 2.0), None);
    assert_eq!(cpu_percent(s(5), s(6), Duration::ZERO, 2.0), None);
    assert_eq!(cpu_percent(s(5), s(6), s(1), 0.0), None);
    assert_eq!(cpu_percent(s(5), s(6), s(1), f64::NAN), None);
}

#[test]
fn whole_cpus_rounds_up() {
    assert_eq!(whole_cpus(1.5), 2);
    assert_eq!(whole_cpus(0.1), 1);
    assert_eq!(whole_cpus(4.0), 4);
    assert_eq!(whole_cpus(0.0), 1);
    assert_eq!(whole_cpus(f64::NAN), 1);
}

#[test]
fn cpu_lists() {
    assert_eq!(count_cpu_list("0-3,8,10-11\n"), Some(7));
    assert_eq!(count_cpu_list("5"), Some(1));
    assert_eq!(count_cpu_list("\n"), Some(0));
    assert_eq!(count_cpu_list("3-1"), None);
    assert_eq!(count_cpu_list("a-b"), None);
}

#[test]
fn mountinfo_escapes() {
    assert_eq!(unescape("/a\\040b\\011c\\134d"), "/a b\tc\\d");
    assert_eq!(unescape("/a\\777"), "/a\\777", "not a byte: kept as written");
    assert_eq!(unescape("/tail\\04"), "/tail\\04");
}

#[test]
fn the_live_machine_reads_without_panicking() {
    let cg = Cgroup::current();
    let m = cg.memory();
    assert!(m.total > 0, "{cg:?}");
    assert!(cg.cpu_limit() > 0.0);
    assert!(cg.cpu_time().is_some(), "{cg:?}");
}
