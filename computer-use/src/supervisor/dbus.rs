//! The desktop's D-Bus session bus: started with `dbus-launch`, its address handed to every
//! desktop process (and, through the daemon, to every process the user starts), so that all of
//! them share one bus and with it one accessibility tree.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

/// A running session bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bus {
    pub address: String,
    pub pid: Option<u32>,
}

/// `dbus-launch` output (`--sh-syntax` or plain) → its variables. Each line may hold several
/// `;`-separated `KEY=value` pairs; `export KEY` parts and quotes are dropped.
pub fn parse_launch_output(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for part in text.lines().flat_map(|l| l.split(';')) {
        let part = part.trim();
        if part.starts_with("export ") {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else { continue };
        let value = value.trim();
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
            .unwrap_or(value);
        vars.insert(key.trim().to_string(), value.to_string());
    }
    vars
}

pub fn bus_from_vars(vars: &BTreeMap<String, String>) -> Option<Bus> {
    let address = vars.get("DBUS_SESSION_BUS_ADDRESS").filter(|a| !a.is_empty())?.clone();
    let pid = vars.get("DBUS_SESSION_BUS_PID").and_then(|p| p.parse().ok());
    Some(Bus { address, pid })
}

/// Starts a session bus with `dbus-launch` (bounded wait).
pub async fn launch(program: &std::path::Path, env: &[(String, String)]) -> Result<Bus, String> {
    let child = tokio::process::Command::new(program)
        .arg("--sh-syntax")
        .env_clear()
        // Without DISPLAY dbus-launch does not tie the bus to an X server that is not up yet;
        // the display is handed to the bus with dbus-update-activation-environment instead.
        .envs(env.iter().filter(|(k, _)| k != "DISPLAY" && k != "DBUS_SESSION_BUS_ADDRESS").cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .map_err(|_| "dbus-launch did not finish within 10s".to_string())?
        .map_err(|e| format!("dbus-launch: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    bus_from_vars(&parse_launch_output(&stdout)).ok_or_else(|| {
        format!(
            "dbus-launch gave no bus address ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

/// Whether the bus accepts connections on the socket its address names.
pub fn answers(address: &str) -> bool {
    use std::os::unix::net::{SocketAddr, UnixStream};
    // An address may list several transports separated by ';'; any reachable one will do.
    address.split(';').any(|transport| {
        let Some(params) = transport.strip_prefix("unix:") else { return false };
        params.split(',').any(|kv| match kv.split_once('=') {
            Some(("path", p)) => UnixStream::connect(p).is_ok(),
            Some(("abstract", name)) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|a| UnixStream::connect_addr(&a))
                    .is_ok()
            }
            _ => false,
        })
    })
}

/// Tells the bus which variables services it starts on demand must get (GTK's settings
/// daemon, the AT-SPI registry…): without DISPLAY they cannot reach the X server.
pub async fn update_activation_environment(
    program: &std::path::Path,
    env: &[(String, String)],
    names: &[&str],
) {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(names)
        .env_clear()
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match cmd.spawn() {
        Ok(child) => match tokio::time::timeout(Duration::from_secs(5), child.wait_with_output()).await {
            Ok(Ok(out)) if out.status.success() => {}
            Ok(Ok(out)) => {
                tracing::warn!(stderr = %String::from_utf8_lossy(&out.stderr), "dbus-update-activation-environment failed")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "dbus-update-activation-environment failed"),
            Err(_) => tracing::warn!("dbus-update-activation-environment timed out"),
        },
        Err(e) => tracing::warn!(error = %e, "cannot run dbus-update-activation-environment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_syntax_output() {
        let out = "DBUS_SESSION_BUS_ADDRESS='unix:path=/tmp/dbus-AbC,guid=42';\nexport DBUS_SESSION_BUS_ADDRESS;\nDBUS_SESSION_BUS_PID=1234;\n";
        let vars = parse_launch_output(out);
        assert_eq!(
            bus_from_vars(&vars),
            Some(Bus { address: "unix:path=/tmp/dbus-AbC,guid=42".into(), pid: Some(1234) })
        );
    }

    #[test]
    fn plain_output_and_several_pairs_per_line() {
        let vars = parse_launch_output(
            "DBUS_SESSION_BUS_ADDRESS=unix:abstract=/tmp/x,guid=1; DBUS_SESSION_BUS_PID=7\n",
        );
        assert_eq!(vars["DBUS_SESSION_BUS_ADDRESS"], "unix:abstract=/tmp/x,guid=1");
        assert_eq!(vars["DBUS_SESSION_BUS_PID"], "7");
        assert_eq!(bus_from_vars(&parse_launch_output("nothing here\n")), None);
        assert_eq!(bus_from_vars(&parse_launch_output("DBUS_SESSION_BUS_ADDRESS=''\n")), None);
    }

    #[test]
    fn answers_only_when_something_listens() {
        let dir = std::env::temp_dir().join(format!("cu-bus-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bus");
        let addr = format!("unix:path={},guid=1", path.display());
        assert!(!answers(&addr));
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(answers(&addr));
        assert!(!answers("tcp:host=localhost,port=1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
