//! Start-up configuration from the `DAYTONA_*` environment variables.
//!
//! Everything the daemon reads from its environment at start is parsed here, once, into
//! [`Config`]. Parsing follows the reference's rules so a sandbox image that works with it works
//! with us: a variable that is present but empty counts as set (an empty boolean is an error),
//! booleans take Go's `ParseBool` spellings and durations Go's syntax (`100ms`, `1m30s`).
//! Any failure names the variable and makes the daemon exit with code 2.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// A variable that could not be parsed or failed validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { var, reason: reason.into() }
}

/// Size-based rotation of the daemon's log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileConfig {
    pub path: PathBuf,
    pub max_size_mb: u64,
    pub max_backups: usize,
    pub max_age_days: u64,
    pub compress: bool,
}

/// A configured secret: compared and used, never printed (`Config` is `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Everything read from the environment at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sandbox_id: String,
    pub log_file: LogFileConfig,
    pub user_home_as_workdir: bool,
    pub otel_endpoint: Option<String>,
    pub organization_id: Option<String>,
    pub region_id: Option<String>,
    pub sandbox_snapshot: Option<String>,
    pub otel_extra_labels: Vec<(String, String)>,
    /// How often telemetry metrics are pushed (`DAYTONA_OTEL_METRICS_INTERVAL`, not a reference
    /// variable: tests shorten it; 10s, at least 100ms).
    pub otel_metrics_interval: Duration,
    pub termination_grace_period: Duration,
    pub termination_check_interval: Duration,
    pub recordings_dir: Option<PathBuf>,
    pub use_git_cli: bool,
    pub use_git_clone_cli: bool,
    pub sandbox_user: Option<String>,
    /// Port of the toolbox API. Not a reference variable: tests and side-by-side runs need to
    /// move it off 2280.
    pub toolbox_port: u16,
    /// Port of the web terminal (`DAYTONA_TERMINAL_PORT`, not a reference variable; 22222).
    pub terminal_port: u16,
    /// Port of the SSH server (`DAYTONA_SSH_PORT`, not a reference variable; 22220).
    pub ssh_port: u16,
    /// Port of the recording dashboard (`DAYTONA_RECORDING_DASHBOARD_PORT`, not a reference
    /// variable; 33333).
    pub recording_dashboard_port: u16,
    /// How long stopping a recording waits for ffmpeg to finish the file before killing it
    /// (`DAYTONA_RECORDING_STOP_TIMEOUT`, 10s as the reference waits).
    pub recording_stop_timeout: Duration,
    /// The gateway's login password (`DAYTONA_SSH_PASSWORD`, `sandbox-ssh` as the reference
    /// has it fixed).
    pub ssh_password: Secret,
    /// Whether password login is allowed at all (`DAYTONA_SSH_PASSWORD_AUTH`, true).
    pub ssh_password_auth: bool,
    /// Public keys allowed besides the sandbox user's `~/.ssh/authorized_keys`, in that file's
    /// format (`DAYTONA_SSH_AUTHORIZED_KEYS`, one key per line).
    pub ssh_authorized_keys: String,
    /// Time an SSH connection has from accept to a successful login
    /// (`DAYTONA_SSH_LOGIN_TIMEOUT`, 30s; sshd's `LoginGraceTime` is 2m).
    pub ssh_login_timeout: Duration,
    /// SSH connections open at once (`DAYTONA_SSH_MAX_CONNECTIONS`, 64); more are closed at once.
    pub ssh_max_connections: usize,
    /// Bytes of recent output each PTY replays to a connecting client
    /// (`DAYTONA_PTY_REPLAY_BYTES`, 64 KiB; 0 disables replay).
    pub pty_replay_bytes: usize,
    /// Interpreter contexts clients may hold at once (the default context not counted).
    pub interpreter_max_contexts: usize,
    /// How long a language server may take to answer one request (`DAYTONA_LSP_REQUEST_TIMEOUT`).
    pub lsp_request_timeout: Duration,
    /// Language servers running at once (`DAYTONA_LSP_MAX_SERVERS`, 16).
    pub lsp_max_servers: usize,
    /// Language servers configured beyond the built-in ones (`DAYTONA_LSP_SERVERS`): language id
    /// to command line.
    pub lsp_servers: BTreeMap<String, Vec<String>>,
    /// The token every port asks for (`DAYTONA_AUTH_TOKEN` or the file `DAYTONA_AUTH_TOKEN_FILE`
    /// names; unset or empty = no authentication, as behind Daytona's proxy).
    pub auth_token: Option<Secret>,
    /// The key of signed file URLs (`DAYTONA_SIGNING_KEY` or `DAYTONA_SIGNING_KEY_FILE`; unset or
    /// empty = signed URLs are not checked).
    pub signing_key: Option<Secret>,
    pub log_level: tracing::Level,
    /// `ENVIRONMENT=production` hides the API documentation routes, as the reference does.
    pub production: bool,
}

/// Reads configuration from a snapshot of the environment. Takes a map so tests never touch the
/// real process environment.
pub fn from_env(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let get = |k: &str| env.get(k).map(String::as_str);

    let sandbox_id = match get("DAYTONA_SANDBOX_ID") {
        Some(v) if !v.is_empty() => v.to_string(),
        Some(_) => return Err(err("DAYTONA_SANDBOX_ID", "must not be empty")),
        None => return Err(err("DAYTONA_SANDBOX_ID", "is required")),
    };

    let log_file = LogFileConfig {
        path: PathBuf::from(get("DAYTONA_DAEMON_LOG_FILE_PATH").unwrap_or("/tmp/daytona-daemon.log")),
        max_size_mb: int_at_least_one(get, "DAYTONA_DAEMON_LOG_MAX_SIZE_MB", 100)?,
        max_backups: int_at_least_one(get, "DAYTONA_DAEMON_LOG_MAX_BACKUPS", 5)? as usize,
        max_age_days: int_at_least_one(get, "DAYTONA_DAEMON_LOG_MAX_AGE_DAYS", 14)?,
        compress: bool_var(get, "DAYTONA_DAEMON_LOG_COMPRESS", true)?,
    };

    let termination_grace_period = duration_var(get, "DAYTONA_TERMINATION_GRACE_PERIOD", "5s")?;
    if termination_grace_period < Duration::from_secs(1) {
        return Err(err("DAYTONA_TERMINATION_GRACE_PERIOD", "must be at least 1s"));
    }
    let termination_check_interval = duration_var(get, "DAYTONA_TERMINATION_CHECK_INTERVAL", "100ms")?;
    if termination_check_interval < Duration::from_millis(1) {
        return Err(err("DAYTONA_TERMINATION_CHECK_INTERVAL", "must be at least 1ms"));
    }

    let otel_metrics_interval = duration_var(get, "DAYTONA_OTEL_METRICS_INTERVAL", "10s")?;
    if otel_metrics_interval < Duration::from_millis(100) {
        return Err(err("DAYTONA_OTEL_METRICS_INTERVAL", "must be at least 100ms"));
    }

    let toolbox_port =
        match get("DAYTONA_TOOLBOX_PORT") {
            None => 2280,
            Some(v) => v.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                err("DAYTONA_TOOLBOX_PORT", format!("{v:?} is not a port number (1-65535)"))
            })?,
        };

    let terminal_port =
        match get("DAYTONA_TERMINAL_PORT") {
            None => 22222,
            Some(v) => v.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                err("DAYTONA_TERMINAL_PORT", format!("{v:?} is not a port number (1-65535)"))
            })?,
        };
    let ssh_port = match get("DAYTONA_SSH_PORT") {
        None => 22220,
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| err("DAYTONA_SSH_PORT", format!("{v:?} is not a port number (1-65535)")))?,
    };
    let recording_dashboard_port = match get("DAYTONA_RECORDING_DASHBOARD_PORT") {
        None => 33333,
        Some(v) => v.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            err("DAYTONA_RECORDING_DASHBOARD_PORT", format!("{v:?} is not a port number (1-65535)"))
        })?,
    };
    let recording_stop_timeout = duration_var(get, "DAYTONA_RECORDING_STOP_TIMEOUT", "10s")?;
    if recording_stop_timeout < Duration::from_millis(100)
        || recording_stop_timeout > Duration::from_secs(600)
    {
        return Err(err("DAYTONA_RECORDING_STOP_TIMEOUT", "must be between 100ms and 10m"));
    }
    let ssh_password = match get("DAYTONA_SSH_PASSWORD") {
        None => Secret("sandbox-ssh".into()),
        // An empty password would let anyone in who tries one; turning password login off is
        // DAYTONA_SSH_PASSWORD_AUTH's job.
        Some("") => return Err(err("DAYTONA_SSH_PASSWORD", "must not be empty")),
        Some(v) => Secret(v.to_string()),
    };
    let ssh_max_connections = match get("DAYTONA_SSH_MAX_CONNECTIONS") {
        None => 64,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=4096).contains(n))
            .ok_or_else(|| err("DAYTONA_SSH_MAX_CONNECTIONS", format!("{v:?} is not a count (1-4096)")))?,
    };
    let ssh_login_timeout = duration_var(get, "DAYTONA_SSH_LOGIN_TIMEOUT", "30s")?;
    if ssh_login_timeout < Duration::from_secs(1) || ssh_login_timeout > Duration::from_secs(3600) {
        return Err(err("DAYTONA_SSH_LOGIN_TIMEOUT", "must be between 1s and 1h"));
    }
    let pty_replay_bytes = match get("DAYTONA_PTY_REPLAY_BYTES") {
        None => 64 * 1024,
        Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n <= 64 * 1024 * 1024).ok_or_else(|| {
            err("DAYTONA_PTY_REPLAY_BYTES", format!("{v:?} is not a byte count (0-67108864)"))
        })?,
    };
    let interpreter_max_contexts = match get("DAYTONA_INTERPRETER_MAX_CONTEXTS") {
        // Each context is a live interpreter; see the interpreter service for why 32.
        None => 32,
        Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n <= 4096).ok_or_else(|| {
            err("DAYTONA_INTERPRETER_MAX_CONTEXTS", format!("{v:?} is not a count (0-4096)"))
        })?,
    };
    let lsp_max_servers = match get("DAYTONA_LSP_MAX_SERVERS") {
        // Each server is a process of 50-300 MiB; 16 is plenty for one sandbox.
        None => 16,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 1024)
            .ok_or_else(|| err("DAYTONA_LSP_MAX_SERVERS", format!("{v:?} is not a count (0-1024)")))?,
    };
    // 30 s covers the first completion of a large TypeScript project (tsserver loads it then).
    let lsp_request_timeout = duration_var(get, "DAYTONA_LSP_REQUEST_TIMEOUT", "30s")?;
    if lsp_request_timeout < Duration::from_millis(10) || lsp_request_timeout > Duration::from_secs(3600) {
        return Err(err("DAYTONA_LSP_REQUEST_TIMEOUT", "must be between 10ms and 1h"));
    }
    let auth_token = secret_var(
        ("DAYTONA_AUTH_TOKEN", get("DAYTONA_AUTH_TOKEN")),
        ("DAYTONA_AUTH_TOKEN_FILE", get("DAYTONA_AUTH_TOKEN_FILE")),
    )?;
    let signing_key = secret_var(
        ("DAYTONA_SIGNING_KEY", get("DAYTONA_SIGNING_KEY")),
        ("DAYTONA_SIGNING_KEY_FILE", get("DAYTONA_SIGNING_KEY_FILE")),
    )?;
    if auth_token.is_some() && get("DAYTONA_SSH_PASSWORD").is_some() {
        // With a token, SSH password login takes the token: a second password beside it would be
        // a way in that the token's owner does not know about.
        return Err(err(
            "DAYTONA_SSH_PASSWORD",
            "cannot be combined with DAYTONA_AUTH_TOKEN: SSH password login then takes the token",
        ));
    }
    let lsp_servers = match get("DAYTONA_LSP_SERVERS") {
        None => BTreeMap::new(),
        Some(v) => parse_lsp_servers(v).map_err(|e| err("DAYTONA_LSP_SERVERS", e))?,
    };

    Ok(Config {
        terminal_port,
        ssh_port,
        recording_dashboard_port,
        recording_stop_timeout,
        ssh_password,
        ssh_password_auth: bool_var(get, "DAYTONA_SSH_PASSWORD_AUTH", true)?,
        ssh_authorized_keys: get("DAYTONA_SSH_AUTHORIZED_KEYS").unwrap_or("").to_string(),
        ssh_max_connections,
        ssh_login_timeout,
        lsp_max_servers,
        lsp_request_timeout,
        lsp_servers,
        interpreter_max_contexts,
        pty_replay_bytes,
        sandbox_id,
        log_file,
        user_home_as_workdir: bool_var(get, "DAYTONA_USER_HOME_AS_WORKDIR", false)?,
        otel_endpoint: get("DAYTONA_OTEL_ENDPOINT").map(str::to_string),
        organization_id: non_empty(get("DAYTONA_ORGANIZATION_ID")),
        region_id: non_empty(get("DAYTONA_REGION_ID")),
        sandbox_snapshot: non_empty(get("DAYTONA_SANDBOX_SNAPSHOT")),
        otel_extra_labels: get("DAYTONA_SANDBOX_OTEL_EXTRA_LABELS").map(parse_labels).unwrap_or_default(),
        otel_metrics_interval,
        termination_grace_period,
        termination_check_interval,
        recordings_dir: get("DAYTONA_RECORDINGS_DIR").map(PathBuf::from),
        use_git_cli: get("DAYTONA_EXPERIMENTAL_USE_GIT_CLI") == Some("true"),
        use_git_clone_cli: get("DAYTONA_EXPERIMENTAL_USE_GIT_CLONE_CLI") == Some("true"),
        sandbox_user: non_empty(get("DAYTONA_SANDBOX_USER")),
        toolbox_port,
        auth_token,
        signing_key,
        log_level: match get("LOG_LEVEL") {
            None => tracing::Level::INFO,
            Some(v) => parse_log_level(v).ok_or_else(|| {
                err("LOG_LEVEL", format!("{v:?} is not a log level (trace, debug, info, warn, error)"))
            })?,
        },
        production: get("ENVIRONMENT") == Some("production"),
    })
}

/// Secrets shorter than this are refused at start: a short token is a mistake (a placeholder, a
/// truncated paste) and guessable.
pub const MIN_SECRET_LEN: usize = 16;

/// A secret given in `var` or in the file `file_var` names (each with its value, looked up by
/// the caller) (read once, here; one trailing line
/// break dropped, as editors add one). Empty `var` = not configured; both set, an unreadable or
/// empty file, a short secret or one with control characters (it could not travel in a header)
/// are errors.
fn secret_var(
    (var, value): (&'static str, Option<&str>),
    (file_var, file): (&'static str, Option<&str>),
) -> Result<Option<Secret>, ConfigError> {
    let (value, from) = match (value, file) {
        (Some(_), Some(_)) => return Err(err(var, format!("set either {var} or {file_var}, not both"))),
        (Some(v), None) => (v.to_string(), var),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(file_var, format!("cannot read {path:?}: {e}")))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.is_empty() {
                return Err(err(file_var, format!("{path:?} is empty")));
            }
            (text.to_string(), file_var)
        }
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() < MIN_SECRET_LEN {
        return Err(err(from, format!("too short: use at least {MIN_SECRET_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(err(from, "must not contain control characters (line breaks, tabs)"));
    }
    // What an `Authorization` header can carry, compared as sent: visible ASCII, no spaces.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(
            from,
            "must be visible ASCII without spaces (it travels in an Authorization header)",
        ));
    }
    Ok(Some(Secret(value)))
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_string)
}

fn int_at_least_one<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n as u64),
            Ok(_) => Err(err(var, "must be at least 1")),
            Err(_) => Err(err(var, format!("{v:?} is not an integer"))),
        },
    }
}

fn bool_var<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => parse_go_bool(v).ok_or_else(|| err(var, format!("{v:?} is not a boolean"))),
    }
}

fn duration_var<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    var: &'static str,
    default: &str,
) -> Result<Duration, ConfigError> {
    let v = get(var).unwrap_or(default);
    parse_go_duration(v).map_err(|reason| err(var, reason))
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units `ns us µs ms s m h`,
/// e.g. `1h2m0.5s`; `0` alone is allowed. Negative durations are rejected here because no
/// variable accepts them.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err(format!("negative duration {s:?}"));
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!("invalid duration {s:?}"));
        }
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit in duration {s:?}")),
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        let value: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        total_ns += value * scale;
    }
    if total_ns > u64::MAX as f64 {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// `k=v,k=v` with keys and values trimmed; malformed pairs are skipped.
/// `{"go": ["gopls"], "rust": ["rust-analyzer"]}`: a JSON object from language id to a non-empty
/// argv array. JSON rather than a shell-like line so arguments with spaces need no quoting rules.
fn parse_lsp_servers(v: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let map: BTreeMap<String, Vec<String>> = serde_json::from_str(v).map_err(|e| {
        format!(
            "expected a JSON object from language id to a command array, like {{\"go\":[\"gopls\"]}}: {e}"
        )
    })?;
    for (language, argv) in &map {
        if !crate::id::is_language_id(language) {
            return Err(format!("{language:?} is not a language id (letters, digits and -_.+#, at most 64)"));
        }
        match argv.first() {
            None => return Err(format!("the command of {language:?} is empty")),
            Some(p) if p.is_empty() => return Err(format!("the program of {language:?} is empty")),
            _ => {}
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(format!("the command of {language:?} contains a NUL byte"));
        }
    }
    Ok(map)
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The level names logrus and tracing share, in any case (`warning` as logrus spells it too).
fn parse_log_level(v: &str) -> Option<tracing::Level> {
    Some(match v.to_ascii_lowercase().as_str() {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        // logrus's two levels above error; tracing has nothing above it.
        "error" | "fatal" | "panic" => tracing::Level::ERROR,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults() {
        let c = from_env(&env(&[("DAYTONA_SANDBOX_ID", "sb")])).unwrap();
        assert_eq!(c.sandbox_id, "sb");
        assert_eq!(c.log_file.path, PathBuf::from("/tmp/daytona-daemon.log"));
        assert_eq!(c.log_file.max_size_mb, 100);
        assert_eq!(c.log_file.max_backups, 5);
        assert_eq!(c.log_file.max_age_days, 14);
        assert!(c.log_file.compress);
        assert_eq!(c.termination_grace_period, Duration::from_secs(5));
        assert_eq!(c.termination_check_interval, Duration::from_millis(100));
        assert_eq!(c.toolbox_port, 2280);
        assert_eq!(c.log_level, tracing::Level::INFO);
        assert!(!c.production && !c.user_home_as_workdir && !c.use_git_cli);
        assert_eq!(c.otel_endpoint, None);
    }

    #[test]
    fn sandbox_id_is_required_and_non_empty() {
        assert_eq!(from_env(&env(&[])).unwrap_err().var, "DAYTONA_SANDBOX_ID");
        assert_eq!(from_env(&env(&[("DAYTONA_SANDBOX_ID", "")])).unwrap_err().var, "DAYTONA_SANDBOX_ID");
    }

    #[test]
    fn empty_bool_is_set_and_invalid() {
        let e =
            from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_DAEMON_LOG_COMPRESS", "")])).unwrap_err();
        assert_eq!(e.var, "DAYTONA_DAEMON_LOG_COMPRESS");
        assert!(e.to_string().contains("DAYTONA_DAEMON_LOG_COMPRESS"));
        let c = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_DAEMON_LOG_COMPRESS", "F")])).unwrap();
        assert!(!c.log_file.compress);
    }

    #[test]
    fn ints_must_be_at_least_one() {
        for bad in ["0", "-3", "ten", ""] {
            let e = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_DAEMON_LOG_MAX_BACKUPS", bad)]))
                .unwrap_err();
            assert_eq!(e.var, "DAYTONA_DAEMON_LOG_MAX_BACKUPS", "{bad:?}");
        }
    }

    #[test]
    fn durations_follow_go_syntax_and_minimums() {
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "5x", "-1s", "s", "1..2s", "+"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
        let e = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_TERMINATION_GRACE_PERIOD", "500ms")]))
            .unwrap_err();
        assert_eq!(e.var, "DAYTONA_TERMINATION_GRACE_PERIOD");
        let c = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_TERMINATION_CHECK_INTERVAL", "1ms")]))
            .unwrap();
        assert_eq!(c.termination_check_interval, Duration::from_millis(1));
    }

    #[test]
    fn labels_and_optional_strings() {
        let c = from_env(&env(&[
            ("DAYTONA_SANDBOX_ID", "x"),
            ("DAYTONA_SANDBOX_OTEL_EXTRA_LABELS", " a = 1 ,broken, b=2,=3"),
            ("DAYTONA_REGION_ID", ""),
            ("DAYTONA_OTEL_ENDPOINT", ""),
        ]))
        .unwrap();
        assert_eq!(c.otel_extra_labels, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(c.region_id, None);
        // Present-but-empty counts as set for the endpoint.
        assert_eq!(c.otel_endpoint, Some(String::new()));
    }

    #[test]
    fn otel_metrics_interval_is_a_go_duration_of_at_least_100ms() {
        let c = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x")])).unwrap();
        assert_eq!(c.otel_metrics_interval, Duration::from_secs(10));
        let c = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_OTEL_METRICS_INTERVAL", "500ms")]))
            .unwrap();
        assert_eq!(c.otel_metrics_interval, Duration::from_millis(500));
        for bad in ["99ms", "0", "10", "soon", ""] {
            let e = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_OTEL_METRICS_INTERVAL", bad)]))
                .unwrap_err();
            assert_eq!(e.var, "DAYTONA_OTEL_METRICS_INTERVAL", "{bad:?}");
        }
    }

    #[test]
    fn ssh_variables() {
        let c = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x")])).unwrap();
        assert_eq!(c.ssh_port, 22220);
        assert_eq!(c.ssh_password, Secret("sandbox-ssh".into()));
        assert!(c.ssh_password_auth);
        assert_eq!(c.ssh_authorized_keys, "");
        assert_eq!(c.ssh_max_connections, 64);
        assert_eq!(c.ssh_login_timeout, Duration::from_secs(30));
        // The password never shows in the configuration's debug output.
        assert!(!format!("{c:?}").contains("sandbox-ssh"));
        let c = from_env(&env(&[
            ("DAYTONA_SANDBOX_ID", "x"),
            ("DAYTONA_SSH_PORT", "2022"),
            ("DAYTONA_SSH_PASSWORD", "s3cret"),
            ("DAYTONA_SSH_PASSWORD_AUTH", "false"),
            ("DAYTONA_SSH_AUTHORIZED_KEYS", "ssh-ed25519 AAAA k"),
            ("DAYTONA_SSH_MAX_CONNECTIONS", "3"),
            ("DAYTONA_SSH_LOGIN_TIMEOUT", "1m30s"),
        ]))
        .unwrap();
        assert_eq!(c.ssh_login_timeout, Duration::from_secs(90));
        assert_eq!((c.ssh_port, c.ssh_password.0.as_str(), c.ssh_password_auth), (2022, "s3cret", false));
        assert_eq!((c.ssh_authorized_keys.as_str(), c.ssh_max_connections), ("ssh-ed25519 AAAA k", 3));
        for (var, bad) in [
            ("DAYTONA_SSH_PORT", "0"),
            ("DAYTONA_SSH_PORT", "ssh"),
            ("DAYTONA_SSH_PASSWORD", ""),
            ("DAYTONA_SSH_PASSWORD_AUTH", "no"),
            ("DAYTONA_SSH_MAX_CONNECTIONS", "0"),
            ("DAYTONA_SSH_MAX_CONNECTIONS", "many"),
            ("DAYTONA_SSH_LOGIN_TIMEOUT", "500ms"),
            ("DAYTONA_SSH_LOGIN_TIMEOUT", "2h"),
            ("DAYTONA_SSH_LOGIN_TIMEOUT", "soon"),
        ] {
            assert_eq!(from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), (var, bad)])).unwrap_err().var, var);
        }
    }

    #[test]
    fn token_and_signing_key() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("DAYTONA_SANDBOX_ID", "x")];
            all.extend_from_slice(pairs);
            from_env(&env(&all))
        };
        let c = with(&[]).unwrap();
        assert_eq!((c.auth_token.clone(), c.signing_key.clone()), (None, None));
        let c = with(&[("DAYTONA_AUTH_TOKEN", ""), ("DAYTONA_SIGNING_KEY", "")]).unwrap();
        assert_eq!((c.auth_token, c.signing_key), (None, None), "empty is off");
        let c = with(&[
            ("DAYTONA_AUTH_TOKEN", "0123456789abcdef"),
            ("DAYTONA_SIGNING_KEY", "key-key-key-key-key"),
        ])
        .unwrap();
        assert_eq!(c.auth_token, Some(Secret("0123456789abcdef".into())));
        assert_eq!(c.signing_key, Some(Secret("key-key-key-key-key".into())));
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "never printed");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
        let c = with(&[("DAYTONA_AUTH_TOKEN_FILE", file.to_str().unwrap())]).unwrap();
        assert_eq!(c.auth_token, Some(Secret("from-a-file-0123456789".into())));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();

        for (pairs, var) in [
            (vec![("DAYTONA_AUTH_TOKEN", "short")], "DAYTONA_AUTH_TOKEN"),
            (vec![("DAYTONA_SIGNING_KEY", "0123456789abcde")], "DAYTONA_SIGNING_KEY"),
            (vec![("DAYTONA_AUTH_TOKEN", "0123456789abcdef\n")], "DAYTONA_AUTH_TOKEN"),
            (
                vec![("DAYTONA_AUTH_TOKEN", "0123456789abcdef"), ("DAYTONA_AUTH_TOKEN_FILE", "/x")],
                "DAYTONA_AUTH_TOKEN",
            ),
            (vec![("DAYTONA_AUTH_TOKEN_FILE", "/nonexistent/token")], "DAYTONA_AUTH_TOKEN_FILE"),
            (vec![("DAYTONA_AUTH_TOKEN_FILE", empty.to_str().unwrap())], "DAYTONA_AUTH_TOKEN_FILE"),
            (
                vec![("DAYTONA_AUTH_TOKEN", "0123456789abcdef"), ("DAYTONA_SSH_PASSWORD", "pw")],
                "DAYTONA_SSH_PASSWORD",
            ),
        ] {
            let e = with(&pairs).unwrap_err();
            assert_eq!(e.var, var, "{pairs:?}");
            assert!(!e.to_string().contains("0123456789abcdef"), "the error never shows the secret");
        }
    }

    #[test]
    fn port_and_levels() {
        let c = from_env(&env(&[
            ("DAYTONA_SANDBOX_ID", "x"),
            ("DAYTONA_TOOLBOX_PORT", "18080"),
            ("LOG_LEVEL", "DEBUG"),
        ]))
        .unwrap();
        assert_eq!(c.toolbox_port, 18080);
        assert_eq!(c.log_level, tracing::Level::DEBUG);
        for bad in ["0", "70000", "http"] {
            assert_eq!(
                from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_TOOLBOX_PORT", bad)]))
                    .unwrap_err()
                    .var,
                "DAYTONA_TOOLBOX_PORT"
            );
        }
        for bad in ["verbose", "", "inf0"] {
            let e = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("LOG_LEVEL", bad)])).unwrap_err();
            assert_eq!(e.var, "LOG_LEVEL", "{bad:?}");
        }
        let c = from_env(&env(&[
            ("DAYTONA_SANDBOX_ID", "x"),
            ("LOG_LEVEL", "Warning"),
            ("ENVIRONMENT", "production"),
        ]))
        .unwrap();
        assert_eq!(c.log_level, tracing::Level::WARN);
        assert_eq!(c.interpreter_max_contexts, 32);
        assert_eq!(c.lsp_max_servers, 16);
        assert_eq!(c.lsp_request_timeout, Duration::from_secs(30));
        assert!(c.lsp_servers.is_empty());
        let three = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_INTERPRETER_MAX_CONTEXTS", "3")]))
            .unwrap();
        assert_eq!(three.interpreter_max_contexts, 3);
        for bad in ["-1", "many", "5000", ""] {
            let e = from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_INTERPRETER_MAX_CONTEXTS", bad)]))
                .unwrap_err();
            assert_eq!(e.var, "DAYTONA_INTERPRETER_MAX_CONTEXTS");
        }
        assert!(c.production);
    }

    #[test]
    fn language_servers() {
        let with = |k: &str, v: &str| from_env(&env(&[("DAYTONA_SANDBOX_ID", "x"), (k, v)]));
        let c = with("DAYTONA_LSP_SERVERS", r#"{"go":["gopls"],"rust":["rust-analyzer","--log","x y"]}"#)
            .unwrap();
        assert_eq!(c.lsp_servers["rust"], ["rust-analyzer", "--log", "x y"]);
        for bad in [
            r#"["gopls"]"#,
            r#"{"go":[]}"#,
            r#"{"go":[""]}"#,
            r#"{"g o":["gopls"]}"#,
            r#"{"go":"gopls"}"#,
            "",
        ] {
            assert_eq!(with("DAYTONA_LSP_SERVERS", bad).unwrap_err().var, "DAYTONA_LSP_SERVERS", "{bad}");
        }
        assert_eq!(
            with("DAYTONA_LSP_REQUEST_TIMEOUT", "250ms").unwrap().lsp_request_timeout,
            Duration::from_millis(250)
        );
        for bad in ["0s", "2h", "soon"] {
            assert_eq!(
                with("DAYTONA_LSP_REQUEST_TIMEOUT", bad).unwrap_err().var,
                "DAYTONA_LSP_REQUEST_TIMEOUT",
                "{bad}"
            );
        }
        assert_eq!(with("DAYTONA_LSP_MAX_SERVERS", "0").unwrap().lsp_max_servers, 0);
        assert_eq!(with("DAYTONA_LSP_MAX_SERVERS", "2000").unwrap_err().var, "DAYTONA_LSP_MAX_SERVERS");
    }
}
