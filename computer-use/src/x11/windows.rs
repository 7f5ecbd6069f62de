//! Top-level client windows from the window manager's EWMH properties (spec computer-use.md §6,
//! the recommended variant): `_NET_CLIENT_LIST`, titles from `_NET_WM_NAME` then `WM_NAME`,
//! the owner's `_NET_WM_PID`, geometry in root coordinates, `_NET_ACTIVE_WINDOW`.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, AtomEnum, ConnectionExt as _, MapState};

use super::conn::Conn;
use super::error::XError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInfo {
    pub window: u32,
    pub pid: u32,
    pub title: String,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub active: bool,
}

impl Conn {
    fn title(&self, w: xproto::Window) -> Result<String, XError> {
        let utf8 = self.prop_bytes(w, self.atoms._NET_WM_NAME, self.atoms.UTF8_STRING)?;
        if !utf8.is_empty() {
            return Ok(String::from_utf8_lossy(&utf8).into_owned());
        }
        // WM_NAME is usually Latin-1 (STRING); map bytes to chars one to one.
        let legacy = self.prop_bytes(w, AtomEnum::WM_NAME.into(), AtomEnum::ANY)?;
        Ok(legacy.iter().map(|&b| b as char).collect())
    }

    fn describe(&self, w: xproto::Window, active: u32) -> Result<WindowInfo, XError> {
        let geo = self.c.get_geometry(w)?.reply()?;
        let pos = self.c.translate_coordinates(w, self.root, 0, 0)?.reply()?;
        let pid = self.prop32(w, self.atoms._NET_WM_PID, AtomEnum::CARDINAL)?.first().copied().unwrap_or(0);
        Ok(WindowInfo {
            window: w,
            pid,
            title: self.title(w)?,
            x: pos.dst_x as i32,
            y: pos.dst_y as i32,
            width: geo.width as u32,
            height: geo.height as u32,
            active: w == active && w != 0,
        })
    }

    /// The managed top-level windows in the window manager's order. Without an EWMH window
    /// manager: the mapped, titled children of the root.
    pub fn windows(&self) -> Result<Vec<WindowInfo>, XError> {
        let active = self
            .prop32(self.root, self.atoms._NET_ACTIVE_WINDOW, AtomEnum::WINDOW)?
            .first()
            .copied()
            .unwrap_or(0);
        let mut list = self.prop32(self.root, self.atoms._NET_CLIENT_LIST, AtomEnum::WINDOW)?;
        let managed = !list.is_empty();
        if !managed {
            list = self.c.query_tree(self.root)?.reply()?.children;
        }
        let mut out = Vec::new();
        for w in list {
            if !managed {
                match self.c.get_window_attributes(w)?.reply() {
                    Ok(a) if a.map_state == MapState::VIEWABLE && !a.override_redirect => {}
                    _ => continue,
                }
            }
            // A window can vanish between listing and asking; skip it.
            match self.describe(w, active) {
                Ok(info) if managed || !info.title.is_empty() => out.push(info),
                Ok(_) => {}
                Err(e) if e.is_lost() => return Err(e),
                Err(_) => {}
            }
        }
        self.c.flush()?;
        Ok(out)
    }
}
