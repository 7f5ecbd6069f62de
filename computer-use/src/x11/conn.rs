//! One open X connection and what the agent caches about it: the root window, the first
//! screen's format, interned atoms, the keyboard mapping, keycodes borrowed for unmapped keysyms
//! and the MIT-SHM segment used for captures.

use std::collections::HashMap;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::error::XError;
use super::keymap::Keymap;
use super::shm::Shm;

x11rb::atom_manager! {
    pub Atoms: AtomsCookie {
        _NET_CLIENT_LIST,
        _NET_ACTIVE_WINDOW,
        _NET_WM_NAME,
        _NET_WM_PID,
        UTF8_STRING,
    }
}

/// The damage watch of one connection (see `damage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Watch {
    /// Not set up yet (first question on this connection).
    Unknown,
    /// The server has no XDamage: callers compare frames instead.
    Missing,
    Watching {
        id: x11rb::protocol::damage::Damage,
        generation: u64,
    },
}

pub struct Conn {
    pub c: RustConnection,
    pub display: String,
    pub root: xproto::Window,
    pub root_visual: xproto::Visualid,
    pub root_depth: u8,
    pub atoms: Atoms,
    pub(super) shm: Option<Shm>,
    pub(super) shm_broken: bool,
    keymap: Option<Keymap>,
    /// Which server this connection talks to, as far as screenshot tags care: unique per
    /// opened connection, so a tag from before a reconnect (a restarted Xvfb) never matches.
    pub instance: u64,
    pub(super) watch: Watch,
    /// Spare keycodes currently bound to a keysym by us, with the keysyms to restore.
    remapped: HashMap<u8, Vec<u32>>,
    xtest: bool,
}

/// A value no other connection of this process, nor (with overwhelming likelihood) of another
/// agent process, has had: a per-process random base plus a counter.
fn next_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static BASE: OnceLock<u64> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let base = *BASE.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    });
    base.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed))
}

impl Conn {
    pub fn open(display: &str) -> Result<Conn, XError> {
        let (c, screen_num) = RustConnection::connect(Some(display))
            .map_err(|e| XError::lost(format!("cannot open display {display}: {e}")))?;
        let screen = &c.setup().roots[screen_num];
        let (root, root_visual, root_depth) = (screen.root, screen.root_visual, screen.root_depth);
        let atoms = Atoms::new(&c)?.reply()?;
        let xtest = c.extension_information(x11rb::protocol::xtest::X11_EXTENSION_NAME)?.is_some()
            && c.xtest_get_version(2, 2)?.reply().is_ok();
        Ok(Conn {
            c,
            display: display.to_owned(),
            root,
            root_visual,
            root_depth,
            atoms,
            shm: None,
            shm_broken: false,
            keymap: None,
            instance: next_instance(),
            watch: Watch::Unknown,
            remapped: HashMap::new(),
            xtest,
        })
    }

    fn need_xtest(&self) -> Result<(), XError> {
        if self.xtest { Ok(()) } else { Err(XError::new("the X server has no XTEST extension")) }
    }

    /// Waits until the server processed everything sent so far.
    pub fn sync(&self) -> Result<(), XError> {
        self.c.get_input_focus()?.reply()?;
        Ok(())
    }

    pub fn key(&self, keycode: u8, press: bool) -> Result<(), XError> {
        self.need_xtest()?;
        let kind = if press { xproto::KEY_PRESS_EVENT } else { xproto::KEY_RELEASE_EVENT };
        self.c.xtest_fake_input(kind, keycode, 0, self.root, 0, 0, 0)?;
        self.c.flush()?;
        Ok(())
    }

    pub fn button(&self, button: u8, press: bool) -> Result<(), XError> {
        self.need_xtest()?;
        let kind = if press { xproto::BUTTON_PRESS_EVENT } else { xproto::BUTTON_RELEASE_EVENT };
        self.c.xtest_fake_input(kind, button, 0, self.root, 0, 0, 0)?;
        self.c.flush()?;
        Ok(())
    }

    /// Absolute pointer motion in root coordinates (X clamps to the screen itself).
    pub fn motion(&self, x: i32, y: i32) -> Result<(), XError> {
        self.need_xtest()?;
        let clamp = |v: i32| v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
        self.c.xtest_fake_input(xproto::MOTION_NOTIFY_EVENT, 0, 0, self.root, clamp(x), clamp(y), 0)?;
        self.c.flush()?;
        Ok(())
    }

    pub fn pointer(&self) -> Result<(i32, i32), XError> {
        let r = self.c.query_pointer(self.root)?.reply()?;
        Ok((r.root_x as i32, r.root_y as i32))
    }

    /// The keyboard mapping, re-read at the start of every keyboard sequence (xfce or a user may
    /// have changed the layout since).
    pub fn refresh_keymap(&mut self) -> Result<(), XError> {
        let setup = self.c.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let r = self.c.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        self.keymap = Some(Keymap::new(min, r.keysyms_per_keycode, r.keysyms));
        Ok(())
    }

    fn keymap(&mut self) -> Result<&mut Keymap, XError> {
        if self.keymap.is_none() {
            self.refresh_keymap()?;
        }
        Ok(self.keymap.as_mut().expect("keymap loaded"))
    }

    /// The keycode (and whether Shift is needed) that produces `keysym`. A keysym the layout
    /// lacks is bound to a spare keycode (as xdotool does); `restore_remapped` undoes that.
    /// `avoid` lists borrowed keycodes still in use by the caller (not to be rebound).
    pub fn keycode_for(&mut self, keysym: u32, avoid: &[u8]) -> Result<(u8, bool), XError> {
        let km = self.keymap()?;
        if let Some(found) = km.lookup(keysym) {
            return Ok(found);
        }
        let per = km.per_keycode;
        let spare = km
            .spare_keycodes()
            .into_iter()
            .find(|k| !avoid.contains(k))
            .or_else(|| self.remapped.keys().copied().find(|k| !avoid.contains(k)))
            .ok_or_else(|| XError::new("no spare keycode left to type this character"))?;
        let original = self.keymap()?.keysyms_of(spare).to_vec();
        self.remapped.entry(spare).or_insert(original);
        let syms = vec![keysym; per as usize];
        self.c.change_keyboard_mapping(1, spare, per, &syms)?;
        self.sync()?;
        self.keymap()?.set(spare, &syms);
        Ok((spare, false))
    }

    /// Gives every borrowed keycode except those in `keep` (still held) its keysyms back.
    pub fn restore_remapped(&mut self, keep: &[u8]) -> Result<(), XError> {
        let (kept, remapped): (HashMap<u8, Vec<u32>>, HashMap<u8, Vec<u32>>) =
            std::mem::take(&mut self.remapped).into_iter().partition(|(k, _)| keep.contains(k));
        self.remapped = kept;
        for (keycode, syms) in remapped {
            let per = syms.len() as u8;
            if per == 0 {
                continue;
            }
            self.c.change_keyboard_mapping(1, keycode, per, &syms)?;
            if let Some(km) = self.keymap.as_mut() {
                km.set(keycode, &syms);
            }
        }
        self.c.flush()?;
        Ok(())
    }

    pub fn has_remapped(&self) -> bool {
        !self.remapped.is_empty()
    }

    /// Reads a property as 32-bit values (windows, cardinals).
    pub fn prop32(
        &self,
        window: xproto::Window,
        prop: xproto::Atom,
        ty: impl Into<xproto::Atom>,
    ) -> Result<Vec<u32>, XError> {
        let r = self.c.get_property(false, window, prop, ty.into(), 0, 4096)?.reply()?;
        Ok(r.value32().map(|v| v.collect()).unwrap_or_default())
    }

    pub fn prop_bytes(
        &self,
        window: xproto::Window,
        prop: xproto::Atom,
        ty: impl Into<xproto::Atom>,
    ) -> Result<Vec<u8>, XError> {
        let r = self.c.get_property(false, window, prop, ty.into(), 0, 4096)?.reply()?;
        Ok(if r.format == 8 { r.value } else { Vec::new() })
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Best effort: a live server gets its keymap and segment back; a dead one does not care.
        let _ = self.restore_remapped(&[]);
        if let Some(shm) = self.shm.take() {
            shm.release(&self.c);
        }
    }
}
