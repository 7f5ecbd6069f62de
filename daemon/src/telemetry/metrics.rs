//! The sandbox's resource metrics (meter `daytona.sandbox`), observed at each periodic push:
//! CPU and memory from the sandbox's cgroup (see [`crate::cgroup`]), disk from `statvfs("/")`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{Meter, ObservableGauge};

use crate::cgroup::{self, Cgroup};

/// One reading of everything the gauges report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub cpu_limit: f64,
    /// `None` on the first reading (a rate needs two) or when it cannot be told.
    pub cpu_utilization: Option<f64>,
    pub memory_limit: u64,
    pub memory_usage: u64,
    pub filesystem: Option<Filesystem>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Filesystem {
    pub total: u64,
    pub usage: u64,
    pub available: u64,
}

impl Sample {
    pub fn memory_utilization(&self) -> Option<f64> {
        percent(self.memory_usage, self.memory_limit)
    }
}

impl Filesystem {
    pub fn utilization(&self) -> Option<f64> {
        percent(self.usage, self.total)
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 100.0).clamp(0.0, 100.0))
}

/// Reads the sample once per push for all the gauges (each gauge's callback asks for it).
struct Sampler {
    cgroup: Cgroup,
    disk: PathBuf,
    /// The last sample and when it was taken: callbacks of the same push share it.
    last: Mutex<Option<(Instant, Sample)>>,
    /// The CPU counter at the previous push, for the utilisation between pushes.
    cpu_before: Mutex<Option<(Instant, Duration)>>,
    /// Callbacks of one push run within this of each other; pushes are 100 ms apart at least.
    reuse_for: Duration,
}

impl Sampler {
    fn sample(&self) -> Sample {
        let mut last = toolbox_envelope::sync::lock(&self.last);
        if let Some((at, sample)) = *last
            && at.elapsed() < self.reuse_for
        {
            return sample;
        }
        let sample = self.read();
        *last = Some((Instant::now(), sample));
        sample
    }

    fn read(&self) -> Sample {
        let cpu_limit = self.cgroup.cpu_limit();
        let now = Instant::now();
        let cpu_utilization = self.cgroup.cpu_time().and_then(|after| {
            let before = toolbox_envelope::sync::lock(&self.cpu_before).replace((now, after));
            let (then, before) = before?;
            cgroup::cpu_percent(before, after, now - then, cpu_limit)
        });
        let memory = self.cgroup.memory();
        Sample {
            cpu_limit,
            cpu_utilization,
            memory_limit: memory.total,
            memory_usage: memory.used,
            filesystem: filesystem(&self.disk),
        }
    }
}

fn filesystem(path: &std::path::Path) -> Option<Filesystem> {
    let s = rustix::fs::statvfs(path).ok()?;
    let unit = if s.f_frsize > 0 { s.f_frsize } else { s.f_bsize };
    let total = s.f_blocks.saturating_mul(unit);
    Some(Filesystem {
        total,
        usage: s.f_blocks.saturating_sub(s.f_bfree).saturating_mul(unit),
        available: s.f_bavail.saturating_mul(unit),
    })
}

/// The instruments; they report for as long as they are kept.
pub struct Gauges {
    _f64: Vec<ObservableGauge<f64>>,
    _u64: Vec<ObservableGauge<u64>>,
}

impl Gauges {
    #[cfg(test)]
    pub fn none() -> Self {
        Gauges { _f64: Vec::new(), _u64: Vec::new() }
    }
}

/// Registers the sandbox gauges on `meter`.
pub fn register(meter: &Meter, interval: Duration) -> Gauges {
    let sampler = Arc::new(Sampler {
        cgroup: Cgroup::current(),
        disk: PathBuf::from("/"),
        last: Mutex::new(None),
        cpu_before: Mutex::new(None),
        reuse_for: (interval / 2).min(Duration::from_secs(1)),
    });
    let f64_gauge = |name: &'static str,
                     unit: &'static str,
                     description: &'static str,
                     read: fn(&Sample) -> Option<f64>| {
        let sampler = sampler.clone();
        meter
            .f64_observable_gauge(name)
            .with_unit(unit)
            .with_description(description)
            .with_callback(move |o| {
                if let Some(v) = read(&sampler.sample()) {
                    o.observe(v, &[]);
                }
            })
            .build()
    };
    let u64_gauge = |name: &'static str, description: &'static str, read: fn(&Sample) -> Option<u64>| {
        let sampler = sampler.clone();
        meter
            .u64_observable_gauge(name)
            .with_unit("By")
            .with_description(description)
            .with_callback(move |o| {
                if let Some(v) = read(&sampler.sample()) {
                    o.observe(v, &[]);
                }
            })
            .build()
    };
    Gauges {
        _f64: vec![
            f64_gauge("daytona.sandbox.cpu.limit", "{cpu}", "CPU cores the sandbox may use", |s| {
                Some(s.cpu_limit)
            }),
            f64_gauge("daytona.sandbox.cpu.utilization", "%", "CPU use in percent of the limit", |s| {
                s.cpu_utilization
            }),
            f64_gauge("daytona.sandbox.memory.utilization", "%", "Memory use in percent of the limit", |s| {
                s.memory_utilization()
            }),
            f64_gauge("daytona.sandbox.filesystem.utilization", "%", "Disk use of / in percent", |s| {
                s.filesystem?.utilization()
            }),
        ],
        _u64: vec![
            u64_gauge("daytona.sandbox.memory.limit", "Memory the sandbox may use", |s| Some(s.memory_limit)),
            u64_gauge("daytona.sandbox.memory.usage", "Memory the sandbox uses", |s| Some(s.memory_usage)),
            u64_gauge("daytona.sandbox.filesystem.usage", "Bytes used on /", |s| Some(s.filesystem?.usage)),
            u64_gauge("daytona.sandbox.filesystem.total", "Size of /", |s| Some(s.filesystem?.total)),
            u64_gauge(
                "daytona.sandbox.filesystem.available",
                "Bytes available on / to the sandbox user",
                |s| Some(s.filesystem?.available),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_bounded_and_need_a_whole() {
        assert_eq!(percent(1, 4), Some(25.0));
        assert_eq!(percent(5, 4), Some(100.0));
        assert_eq!(percent(1, 0), None);
        let s = Sample { memory_limit: 200, memory_usage: 50, ..Sample::default() };
        assert_eq!(s.memory_utilization(), Some(25.0));
    }

    #[test]
    fn the_root_filesystem_reads_sanely() {
        let fs = filesystem(std::path::Path::new("/")).expect("statvfs of /");
        assert!(fs.total > 0 && fs.usage <= fs.total && fs.available <= fs.total, "{fs:?}");
        assert!(fs.utilization().is_some_and(|u| (0.0..=100.0).contains(&u)));
    }

    #[test]
    fn cpu_utilisation_comes_from_the_second_reading_on() {
        let sampler = Sampler {
            cgroup: Cgroup::current(),
            disk: PathBuf::from("/"),
            last: Mutex::new(None),
            cpu_before: Mutex::new(None),
            reuse_for: Duration::ZERO,
        };
        let first = sampler.sample();
        assert!(first.cpu_limit > 0.0 && first.memory_limit > 0 && first.memory_usage > 0, "{first:?}");
        assert_eq!(first.cpu_utilization, None);
        // Some CPU time, so the counter moves.
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {
            std::hint::black_box(spin.elapsed());
        }
        let second = sampler.sample();
        assert!(second.cpu_utilization.is_some_and(|u| (0.0..=100.0).contains(&u)), "{second:?}");
    }
}
