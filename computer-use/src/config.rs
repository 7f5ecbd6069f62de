//! The agent's configuration, read once from the environment the daemon passes on.
//!
//! Defaults are the reference's code values (spec computer-use.md §2.1), not its README's.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DISPLAY`, default `:0`.
    pub display: String,
    /// `VNC_RESOLUTION`, default `1024x768`.
    pub resolution: String,
    /// `VNC_PORT`, default 5901.
    pub vnc_port: u16,
    /// `NO_VNC_PORT`, default 6080.
    pub novnc_port: u16,
    /// `VNC_USER` → `DAYTONA_SANDBOX_USER` → `root`; only exported as `USER` to the desktop.
    pub user: String,
    /// `HOME` (default `/root`): the per-process logs live in `<home>/.daytona/computeruse`.
    pub home: PathBuf,
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let non_empty = |k: &str| get(k).filter(|v| !v.is_empty());
        let port = |k: &str, default: u16| -> Result<u16, String> {
            match non_empty(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| format!("{k}={v:?} is not a port number")),
            }
        };
        Ok(Config {
            display: non_empty("DISPLAY").unwrap_or_else(|| ":0".into()),
            resolution: non_empty("VNC_RESOLUTION").unwrap_or_else(|| "1024x768".into()),
            vnc_port: port("VNC_PORT", 5901)?,
            novnc_port: port("NO_VNC_PORT", 6080)?,
            user: non_empty("VNC_USER")
                .or_else(|| non_empty("DAYTONA_SANDBOX_USER"))
                .unwrap_or_else(|| "root".into()),
            home: non_empty("HOME").unwrap_or_else(|| "/root".into()).into(),
        })
    }

    /// Where per-process `.log`/`.err` files go.
    pub fn log_dir(&self) -> PathBuf {
        self.home.join(".daytona").join("computeruse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_code_values() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.display, ":0");
        assert_eq!(c.resolution, "1024x768");
        assert_eq!((c.vnc_port, c.novnc_port), (5901, 6080));
        assert_eq!(c.user, "root");
    }

    #[test]
    fn user_falls_back_through_sandbox_user_and_bad_ports_are_named() {
        let c = Config::from_lookup(|k| (k == "DAYTONA_SANDBOX_USER").then(|| "daytona".into())).unwrap();
        assert_eq!(c.user, "daytona");
        let e = Config::from_lookup(|k| (k == "VNC_PORT").then(|| "x".into())).unwrap_err();
        assert!(e.contains("VNC_PORT"), "{e}");
    }
}
