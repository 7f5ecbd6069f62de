//! The computer-use agent.
//!
//! This binary will supervise the X11 desktop (D-Bus session bus, Xvfb, the window manager, the
//! AT-SPI bus, x11vnc and noVNC), perform mouse and keyboard input over XTEST, take screenshots,
//! list windows and walk the accessibility tree over AT-SPI. The daemon starts it lazily and
//! forwards `/computeruse/*` to it over a Unix socket. It is dynamically linked on purpose: it
//! only runs in images that ship an X11 desktop.
//!
//! Until the computer-use issue lands it only reports that it is not built yet, so the daemon's
//! forwarding layer can tell "agent absent" from "agent present".

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("computer-use: the desktop agent is not implemented in this build");
    ExitCode::from(3)
}
