//! Keyboard sequences over XTEST (spec computer-use.md §5, sdk-0.226 §3.6).
//!
//! Characters the layout cannot produce are typed by binding their keysym to a spare keycode
//! for the duration of the request (xdotool's technique), then restoring the keycode. Clients
//! look the new binding up lazily, so the restore waits a moment after the last key event.

use std::thread::sleep;
use std::time::Duration;

use super::keys::{Chord, TypeAction};
use super::modifiers::with_modifiers;
use crate::x11::error::XError;
use crate::x11::keymap::{RETURN, SHIFT_L, char_keysym, token_keysym};
use crate::x11::service::X11;

/// How long clients get to read a borrowed binding before it is taken back.
const REBIND_SETTLE: Duration = Duration::from_millis(100);

fn keysym(token: &str) -> Result<u32, XError> {
    token_keysym(token).ok_or_else(|| XError::new(format!("no keysym for key {token:?}")))
}

/// Gives borrowed keycodes back (except those still held by `keyboard/down`).
fn restore_borrowed(x11: &X11) -> Result<(), XError> {
    let keep = x11.held_keys();
    x11.with(|c| {
        if c.has_remapped() {
            sleep(REBIND_SETTLE);
            c.restore_remapped(&keep)?;
            c.sync()?;
        }
        Ok(())
    })
}

/// Presses and releases the key producing `sym` (with Shift when the layout needs it).
fn tap_keysym(x11: &X11, sym: u32) -> Result<(), XError> {
    x11.with(|c| {
        let (kc, shift) = c.keycode_for(sym, &[])?;
        let shift_kc = if shift { Some(c.keycode_for(SHIFT_L, &[kc])?.0) } else { None };
        if let Some(s) = shift_kc {
            c.key(s, true)?;
        }
        c.key(kc, true)?;
        c.key(kc, false)?;
        if let Some(s) = shift_kc {
            c.key(s, false)?;
        }
        c.sync()
    })
}

pub fn type_text(x11: &X11, actions: &[TypeAction], delay_ms: i64) -> Result<(), XError> {
    if actions.is_empty() {
        return Ok(());
    }
    let _one_typist = crate::sync::lock(&x11.typing);
    let delay = (delay_ms > 0).then(|| Duration::from_millis(delay_ms as u64));
    x11.with(|c| c.refresh_keymap())?;
    let r = (|| {
        for action in actions {
            match action {
                TypeAction::Enter => {
                    tap_keysym(x11, RETURN)?;
                    if let Some(d) = delay {
                        sleep(d);
                    }
                }
                TypeAction::Text(text) => {
                    for (i, ch) in text.chars().enumerate() {
                        if i > 0
                            && let Some(d) = delay
                        {
                            sleep(d);
                        }
                        tap_keysym(x11, char_keysym(ch))?;
                    }
                }
            }
        }
        Ok(())
    })();
    let restored = restore_borrowed(x11);
    r.and(restored)
}

/// `keyboard/key` and `keyboard/hotkey`: tap the key with the modifiers held.
pub fn press_chord(x11: &X11, chord: &Chord) -> Result<(), XError> {
    let _one_typist = crate::sync::lock(&x11.typing);
    let sym = keysym(&chord.key)?;
    x11.with(|c| c.refresh_keymap())?;
    let r = with_modifiers(x11, &chord.modifiers, || {
        x11.with(|c| {
            let (kc, _) = c.keycode_for(sym, &[])?;
            c.key(kc, true)?;
            c.key(kc, false)?;
            c.sync()
        })
    });
    let restored = restore_borrowed(x11);
    r.and(restored)
}

/// `keyboard/down` / `keyboard/up` of a normalised key token.
pub fn key_state(x11: &X11, token: &str, down: bool) -> Result<(), XError> {
    let _one_typist = crate::sync::lock(&x11.typing);
    let sym = keysym(token)?;
    let kc = x11.with(|c| {
        if down {
            c.refresh_keymap()?;
        }
        let (kc, _) = c.keycode_for(sym, &[])?;
        c.key(kc, down)?;
        c.sync()?;
        Ok(kc)
    })?;
    if down {
        x11.note_key_down(kc);
        Ok(())
    } else {
        x11.note_key_up(kc);
        restore_borrowed(x11)
    }
}
