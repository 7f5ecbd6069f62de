//! `daytona-computer-use`: the desktop agent's entry point.
//!
//! `--socket PATH` serves on a Unix socket (how the daemon runs it); `--listen ADDR` serves on a
//! TCP address instead (tests and benchmarks talk to the agent directly that way).

use std::process::ExitCode;

use computer_use::config::Config;
use computer_use::server::{self, Listen};

fn usage() -> ExitCode {
    eprintln!("usage: daytona-computer-use (--socket PATH | --listen HOST:PORT)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = match args.as_slice() {
        [flag, path] if flag == "--socket" => Listen::Unix(path.into()),
        [flag, addr] if flag == "--listen" => match addr.parse() {
            Ok(addr) => Listen::Tcp(addr),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DAYTONA_COMPUTER_USE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("daytona-computer-use: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("daytona-computer-use: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(server::serve(listen, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daytona-computer-use: {e}");
            ExitCode::from(1)
        }
    }
}
