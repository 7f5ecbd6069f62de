//! Which TCP ports something in the sandbox listens on.
//!
//! The source is the kernel's socket tables of the daemon's network namespace — the sandbox's:
//! `/proc/net/tcp` *and* `/proc/net/tcp6`, sockets in LISTEN state, whatever address they are
//! bound to. The IPv6 table matters: a dual-stack listener (`::`, Node's default) and an
//! IPv6-only one appear only there. Sockets are not mapped to processes (no `/proc/*/fd` walk).
//!
//! Reading the tables costs the kernel a walk of its socket hashes (milliseconds on some
//! hosts), so they are read on demand, never in the background, and a result is reused for
//! [`SCAN_TTL`]; concurrent callers share one read.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// How long a scan of the tables stands for the current state (the reference rescans every
/// second). A listener started or stopped within it shows at the next scan.
pub const SCAN_TTL: Duration = Duration::from_millis(500);
/// How long the in-use probe waits for a connection, as the reference does.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(50);
/// The TCP state `LISTEN` as the tables write it.
const LISTEN: &str = "0A";

/// The ports `in-use` may be asked about, as in the reference.
pub const CHECKABLE: std::ops::RangeInclusive<i64> = 3000..=9999;

/// A port the in-use check refuses. The messages are the reference's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("invalid port: must be a number between 3000 and 9999")]
    NotANumber,
    #[error("port out of range: must be between 3000 and 9999")]
    OutOfRange,
}

/// A port as the in-use route takes it: a decimal integer with an optional sign (Go's `Atoi`:
/// `+3000` and `03000` are 3000; spaces, hex and 64-bit overflow are not numbers), within
/// [`CHECKABLE`].
pub fn parse_checkable(text: &str) -> Result<u16, PortError> {
    let n: i64 = text.parse().map_err(|_| PortError::NotANumber)?;
    if !CHECKABLE.contains(&n) {
        return Err(PortError::OutOfRange);
    }
    u16::try_from(n).map_err(|_| PortError::OutOfRange)
}

/// The listening-ports service.
pub struct Ports {
    /// Where `net/tcp` and `net/tcp6` are: `/proc/self`, the daemon's network namespace.
    proc_dir: PathBuf,
    scan: tokio::sync::Mutex<Option<Scan>>,
}

#[derive(Clone)]
struct Scan {
    at: Instant,
    ports: Arc<BTreeSet<u16>>,
}

impl Ports {
    pub fn new() -> Self {
        Self::with_proc_dir(Path::new("/proc/self"))
    }

    /// Reads the tables under `proc_dir` (tests give a directory of fixtures).
    pub fn with_proc_dir(proc_dir: &Path) -> Self {
        Ports { proc_dir: proc_dir.to_path_buf(), scan: tokio::sync::Mutex::new(None) }
    }

    /// The ports in LISTEN state on any address, IPv4 or IPv6, ascending, each once.
    pub async fn listening(&self) -> Arc<BTreeSet<u16>> {
        let mut scan = self.scan.lock().await;
        if let Some(s) = scan.as_ref().filter(|s| s.at.elapsed() < SCAN_TTL) {
            return s.ports.clone();
        }
        let dir = self.proc_dir.clone();
        let ports = tokio::task::spawn_blocking(move || read_listening(&dir))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let ports = Arc::new(ports);
        *scan = Some(Scan { at: Instant::now(), ports: ports.clone() });
        ports
    }

    /// Whether something listens on `port`: in the last scan, else reachable on localhost
    /// (IPv4 or IPv6) within [`PROBE_TIMEOUT`]. A port found by the probe joins the scan until
    /// the next one, as in the reference.
    pub async fn in_use(&self, port: u16) -> bool {
        if self.listening().await.contains(&port) {
            return true;
        }
        if !probe(port).await {
            return false;
        }
        let mut scan = self.scan.lock().await;
        if let Some(s) = scan.as_mut() {
            let mut ports = (*s.ports).clone();
            ports.insert(port);
            s.ports = Arc::new(ports);
        }
        true
    }
}

impl Default for Ports {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a TCP connection to `localhost:<port>` succeeds (127.0.0.1 and ::1 are tried at
/// once) within [`PROBE_TIMEOUT`]. The connection is closed at once: the reference leaves it
/// open, which leaks a descriptor per call and leaves the target server a dangling client.
pub async fn probe(port: u16) -> bool {
    let try_one = |ip: std::net::IpAddr| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(SocketAddr::new(ip, port))).await {
            // Dropping the stream closes it (FIN) before this returns.
            Ok(Ok(stream)) => {
                drop(stream);
                true
            }
            _ => false,
        }
    };
    let v4 = Box::pin(try_one(Ipv4Addr::LOCALHOST.into()));
    let v6 = Box::pin(try_one(Ipv6Addr::LOCALHOST.into()));
    // The first success answers; a failure waits for the other address.
    match futures_util::future::select(v4, v6).await {
        futures_util::future::Either::Left((true, _)) | futures_util::future::Either::Right((true, _)) => {
            true
        }
        futures_util::future::Either::Left((false, other)) => other.await,
        futures_util::future::Either::Right((false, other)) => other.await,
    }
}

/// The LISTEN ports of `<dir>/net/tcp` and `<dir>/net/tcp6`; a missing table (no IPv6 in the
/// kernel) adds nothing.
fn read_listening(dir: &Path) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for table in ["net/tcp", "net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(table)) {
            ports.extend(parse_listening(&text));
        }
    }
    ports
}

/// The local ports of the LISTEN sockets in a `/proc/net/tcp` or `/proc/net/tcp6` table:
/// a header line, then `sl local_address rem_address st …` rows where an address is
/// `<hex ip>:<hex port>`. Rows that do not parse are skipped.
pub fn parse_listening(table: &str) -> impl Iterator<Item = u16> + '_ {
    table.lines().skip(1).filter_map(|row| {
        let mut f = row.split_whitespace();
        let local = f.nth(1)?;
        let state = f.nth(1)?;
        if state != LISTEN {
            return None;
        }
        let (_, port) = local.rsplit_once(':')?;
        u16::from_str_radix(port, 16).ok().filter(|&p| p != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = include_str!("testdata/tcp");
    const TCP6: &str = include_str!("testdata/tcp6");

    #[test]
    fn listen_rows_of_both_tables() {
        // IPv4: 0.0.0.0:2024, 127.0.0.1:3000, 10.0.0.2:8080 listen; the others are TIME_WAIT,
        // ESTABLISHED and CLOSE_WAIT rows (their local port 3000 or 56611 is not a listener).
        assert_eq!(parse_listening(TCP).collect::<Vec<_>>(), [2024, 3000, 8080]);
        // IPv6: [::]:2280 (dual stack), [::1]:5001, [::ffff:127.0.0.1]:8080 listen.
        assert_eq!(parse_listening(TCP6).collect::<Vec<_>>(), [2280, 5001, 8080]);
    }

    #[test]
    fn checkable_ports_are_decimal_with_an_optional_sign() {
        for (text, want) in [("3000", 3000), ("9999", 9999), ("+3000", 3000), ("03000", 3000), ("5432", 5432)]
        {
            assert_eq!(parse_checkable(text), Ok(want), "{text}");
        }
        for text in ["2999", "10000", "0", "-3000", "+0", "65535", "65536", "9223372036854775807"] {
            assert_eq!(parse_checkable(text), Err(PortError::OutOfRange), "{text}");
        }
        for text in [
            "",
            "abc",
            "3000a",
            " 3000",
            "3000 ",
            "0x0BB8",
            "3e3",
            "3_000",
            "+",
            "-",
            "3000.0",
            "\u{ff}",
            "9223372036854775808",
        ] {
            assert_eq!(parse_checkable(text), Err(PortError::NotANumber), "{text:?}");
        }
    }

    #[test]
    fn garbage_rows_are_skipped() {
        let table = "header\n\
                     0: 00000000:0BB8 00000000:0000 0A rest\n\
                     1: 00000000:ZZZZ 00000000:0000 0A\n\
                     2: 00000000 00000000:0000 0A\n\
                     3: 00000000:10000 00000000:0000 0A\n\
                     4: 00000000:0000 00000000:0000 0A\n\
                     5: 00000000:0BB9\n\
                     \n\
                     6: 00000000:0BBA 00000000:0000 0a\n";
        assert_eq!(parse_listening(table).collect::<Vec<_>>(), [3000]);
        assert_eq!(parse_listening("").count(), 0);
    }

    fn fixture_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join("net/tcp"), TCP).unwrap();
        std::fs::write(dir.path().join("net/tcp6"), TCP6).unwrap();
        dir
    }

    #[tokio::test]
    async fn both_tables_deduplicated_and_sorted_and_reused_for_a_moment() {
        let dir = fixture_dir();
        let ports = Ports::with_proc_dir(dir.path());
        assert_eq!(
            ports.listening().await.iter().copied().collect::<Vec<_>>(),
            [2024, 2280, 3000, 5001, 8080]
        );
        // Within the TTL the scan is reused; after it the tables are read again.
        std::fs::remove_file(dir.path().join("net/tcp6")).unwrap();
        assert_eq!(ports.listening().await.len(), 5);
        tokio::time::sleep(SCAN_TTL + Duration::from_millis(20)).await;
        assert_eq!(ports.listening().await.iter().copied().collect::<Vec<_>>(), [2024, 3000, 8080]);
        // No tables at all: nothing listens.
        let empty = tempfile::tempdir().unwrap();
        assert!(Ports::with_proc_dir(empty.path()).listening().await.is_empty());
    }

    #[tokio::test]
    async fn in_use_takes_the_scan_then_probes() {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::with_proc_dir(dir.path()); // empty tables: only the probe can tell
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(ports.in_use(port).await);
        // Remembered until the next scan.
        assert!(ports.listening().await.contains(&port));
        drop(listener);
        assert!(ports.in_use(port).await, "the probe's finding stands until the next scan");
        tokio::time::sleep(SCAN_TTL + Duration::from_millis(20)).await;
        assert!(!ports.in_use(port).await);

        let dir = fixture_dir();
        let ports = Ports::with_proc_dir(dir.path());
        assert!(ports.in_use(5001).await, "in the IPv6 table");
    }

    #[tokio::test]
    async fn the_probe_closes_its_connection() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(probe(port).await);
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        // End of stream, not a timeout: the prober closed its side.
        assert_eq!(conn.read(&mut buf).unwrap(), 0);
    }

    #[tokio::test]
    async fn the_probe_reaches_ipv6_only_listeners_and_fails_fast_on_closed_ports() {
        let listener = std::net::TcpListener::bind("[::1]:0").expect("an IPv6 loopback address");
        assert!(probe(listener.local_addr().unwrap().port()).await);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let started = Instant::now();
        assert!(!probe(closed).await);
        assert!(started.elapsed() < PROBE_TIMEOUT * 4, "{:?}", started.elapsed());
    }
}
