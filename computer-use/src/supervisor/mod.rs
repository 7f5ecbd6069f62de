//! Desktop process supervision (spec computer-use.md §2): the session bus, Xvfb, xfce4, the
//! AT-SPI bus, x11vnc and noVNC, with restart and logs.
//!
//! `service` is the supervisor, `table` which processes make up the desktop, `child` one
//! supervised process, `ready` how a process is seen to be ready, `dbus` the session bus, `logs`
//! their log files; `api` serves the start/stop/status/process routes. The environment tag that
//! finds every desktop process is shared with the daemon (`computer_use_api::desktop_tag`).

pub mod api;
mod child;
mod dbus;
pub mod logs;
mod ready;
pub mod service;
pub mod table;
