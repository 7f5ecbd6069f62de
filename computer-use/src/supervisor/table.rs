//! The process table (spec computer-use.md §2.2): which programs make up the desktop, in which
//! order they start, which restart on their own, and how each one is known to be ready.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// How the supervisor knows a freshly started process is usable. Checked, never slept for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// An X client can connect to the display.
    XDisplay,
    /// An EWMH window manager announced itself on the root window.
    WindowManager,
    /// The TCP port accepts and greets with `RFB `.
    Rfb(u16),
    /// The TCP port accepts.
    Accepts(u16),
    /// Nothing to wait for (the AT-SPI launcher often exits at once by design).
    Nothing,
}

#[derive(Debug, Clone)]
pub struct ProcSpec {
    pub name: &'static str,
    pub priority: u32,
    pub auto_restart: bool,
    /// The program to run, or why it cannot be found.
    pub program: Result<PathBuf, String>,
    pub args: Vec<String>,
    /// Gets `HOME` and `USER` on top of the desktop variables (the session processes).
    pub session_env: bool,
    pub ready: Readiness,
    /// Whether `start` fails when this process is not ready.
    pub required: bool,
}

pub const ATSPI_LAUNCHERS: [&str; 2] =
    ["/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher"];
const NOVNC_LAUNCH: &str = "/usr/share/novnc/utils/launch.sh";
const NOVNC_PROXY: &str = "/usr/share/novnc/utils/novnc_proxy";

/// The first executable called `name` on `path` (a `$PATH` value).
pub fn which(name: &str, path: Option<&OsStr>, exists: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    if name.contains('/') {
        return exists(Path::new(name)).then(|| PathBuf::from(name));
    }
    std::env::split_paths(path?).map(|dir| dir.join(name)).find(|p| exists(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Builds the table for `config`. Programs are looked up on `path` (the agent's `$PATH`, so an
/// image can put its own builds first) rather than at the reference's fixed `/usr/bin` paths.
pub fn process_table(config: &Config, path: Option<&OsStr>, exists: &dyn Fn(&Path) -> bool) -> Vec<ProcSpec> {
    let find = |name: &str, package: &str| {
        which(name, path, exists).ok_or_else(|| format!("{name} not found on PATH (package {package})"))
    };
    let display = config.display.clone();
    let vnc = config.vnc_port.to_string();
    let novnc = config.novnc_port.to_string();
    let mut table = vec![
        ProcSpec {
            name: "xvfb",
            priority: 100,
            auto_restart: true,
            program: find("Xvfb", "xvfb"),
            // -noreset: without it the server resets whenever its last client disconnects,
            // dropping root-window properties the desktop relies on (e.g. AT_SPI_BUS).
            args: vec![
                display.clone(),
                "-screen".into(),
                "0".into(),
                format!("{}x24", config.resolution),
                "-noreset".into(),
            ],
            session_env: false,
            ready: Readiness::XDisplay,
            required: true,
        },
        ProcSpec {
            name: "xfce4",
            priority: 200,
            auto_restart: true,
            program: find("startxfce4", "xfce4"),
            args: vec![],
            session_env: true,
            ready: Readiness::WindowManager,
            required: true,
        },
    ];
    let launcher = ATSPI_LAUNCHERS
        .iter()
        .map(PathBuf::from)
        .find(|p| exists(p))
        .or_else(|| which("at-spi-bus-launcher", path, exists));
    if let Some(launcher) = launcher {
        table.push(ProcSpec {
            name: "atspi",
            priority: 250,
            auto_restart: false,
            program: Ok(launcher),
            args: vec!["--launch-immediately".into()],
            session_env: true,
            ready: Readiness::Nothing,
            required: false,
        });
    }
    table.push(ProcSpec {
        name: "x11vnc",
        priority: 300,
        auto_restart: true,
        program: find("x11vnc", "x11vnc"),
        args: vec![
            "-display".into(),
            display,
            "-forever".into(),
            "-shared".into(),
            "-rfbport".into(),
            vnc.clone(),
        ],
        session_env: false,
        ready: Readiness::Rfb(config.vnc_port),
        required: true,
    });
    let target = format!("localhost:{vnc}");
    let (program, args) = if exists(Path::new(NOVNC_LAUNCH)) {
        (Ok(PathBuf::from(NOVNC_LAUNCH)), vec!["--vnc".into(), target, "--listen".into(), novnc])
    } else if exists(Path::new(NOVNC_PROXY)) {
        (Ok(PathBuf::from(NOVNC_PROXY)), vec!["--vnc".into(), target, "--listen".into(), novnc])
    } else {
        (find("websockify", "novnc"), vec!["--web=/usr/share/novnc/".into(), novnc, target])
    };
    table.push(ProcSpec {
        name: "novnc",
        priority: 400,
        auto_restart: true,
        program,
        args,
        session_env: false,
        ready: Readiness::Accepts(config.novnc_port),
        required: true,
    });
    table.sort_by_key(|p| p.priority);
    table
}

/// The desktop is `active` when every required process runs, `partial` when anything runs.
pub fn overall<'a>(running: impl IntoIterator<Item = (&'a ProcSpec, bool)>) -> &'static str {
    let (mut all_required, mut any) = (true, false);
    for (spec, up) in running {
        any |= up;
        if spec.required && !up {
            all_required = false;
        }
    }
    match (all_required, any) {
        (true, true) => "active",
        (_, true) => "partial",
        _ => "inactive",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "DISPLAY" => Some(":57".into()),
            "VNC_PORT" => Some("5999".into()),
            "NO_VNC_PORT" => Some("6999".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn table_in_priority_order_with_the_configured_display_and_ports() {
        let everything = |_: &Path| true;
        let t = process_table(&config(), Some(OsStr::new("/bin:/usr/bin")), &everything);
        let names: Vec<_> = t.iter().map(|p| (p.name, p.priority, p.auto_restart)).collect();
        assert_eq!(
            names,
            [
                ("xvfb", 100, true),
                ("xfce4", 200, true),
                ("atspi", 250, false),
                ("x11vnc", 300, true),
                ("novnc", 400, true)
            ]
        );
        assert_eq!(t[0].program.as_deref().unwrap(), Path::new("/bin/Xvfb"));
        assert_eq!(t[0].args[..4], [":57", "-screen", "0", "1024x768x24"]);
        assert!(t[3].args.windows(2).any(|w| w == ["-rfbport", "5999"]));
        assert_eq!(t[4].program.as_deref().unwrap(), Path::new(NOVNC_LAUNCH));
        assert_eq!(t[4].args, ["--vnc", "localhost:5999", "--listen", "6999"]);
        assert_eq!(t[4].ready, Readiness::Accepts(6999));
    }

    #[test]
    fn missing_programs_are_named_and_atspi_is_optional() {
        let only = |p: &Path| p == Path::new("/opt/bin/websockify");
        let t = process_table(&config(), Some(OsStr::new("/opt/bin")), &only);
        assert!(t.iter().all(|p| p.name != "atspi"));
        let xvfb = t[0].program.as_ref().unwrap_err();
        assert!(xvfb.contains("Xvfb not found"), "{xvfb}");
        let novnc = t.iter().find(|p| p.name == "novnc").unwrap();
        assert_eq!(novnc.program.as_deref().unwrap(), Path::new("/opt/bin/websockify"));
        assert_eq!(novnc.args, ["--web=/usr/share/novnc/", "6999", "localhost:5999"]);
    }

    #[test]
    fn status_aggregation() {
        let t = process_table(&config(), None, &|_| true);
        let with = |up: &[&str]| overall(t.iter().map(|p| (p, up.contains(&p.name))));
        assert_eq!(with(&["xvfb", "xfce4", "x11vnc", "novnc"]), "active");
        assert_eq!(with(&["xvfb", "xfce4", "x11vnc", "novnc", "atspi"]), "active");
        assert_eq!(with(&["xvfb"]), "partial");
        assert_eq!(with(&["atspi"]), "partial");
        assert_eq!(with(&[]), "inactive");
    }
}
