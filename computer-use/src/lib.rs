//! The computer-use agent.
//!
//! Supervises the X11 desktop (D-Bus session bus, Xvfb, the window manager, the AT-SPI bus,
//! x11vnc and noVNC), performs mouse and keyboard input over XTEST, takes screenshots, lists
//! windows and walks the accessibility tree over AT-SPI; beyond the reference, it serves the X11
//! clipboard as text. The daemon starts it lazily and forwards `/computeruse/*` to it over a Unix
//! socket; the routes and bodies here are exactly the ones the clients call on the daemon, so
//! forwarding is a byte-for-byte relay. It is dynamically linked on purpose: it only runs in
//! images that ship an X11 desktop.
//!
//! Layers point down: `server` assembles the areas' `api` routes over `state`; each area's
//! `api` (handlers) sits over its service; services share `desktop_env`, `config`, `sync` and
//! the X11 connection, and know nothing of HTTP. The request and response bodies, and their
//! OpenAPI description, come from the `computer-use-api` crate, which the daemon publishes.

pub mod a11y;
pub mod clipboard;
pub mod config;
pub mod desktop_env;
pub mod display;
pub mod error;
pub mod input;
pub mod screenshot;
pub mod server;
pub mod state;
pub mod supervisor;
pub use toolbox_envelope::sync;
pub mod x11;
