//! Holding modifier keys around an input sequence.

use crate::x11::error::XError;
use crate::x11::keymap::token_keysym;
use crate::x11::service::X11;

/// Presses `mods` in order, runs `f`, releases them in reverse order — also when `f` failed.
pub fn with_modifiers<R>(
    x11: &X11,
    mods: &[&'static str],
    f: impl FnOnce() -> Result<R, XError>,
) -> Result<R, XError> {
    if mods.is_empty() {
        return f();
    }
    let mut pressed: Vec<u8> = Vec::new();
    let r = (|| {
        for m in mods {
            let sym = token_keysym(m).ok_or_else(|| XError::new(format!("no keysym for modifier {m}")))?;
            let avoid = pressed.clone();
            let kc = x11.with(|c| {
                let (kc, _) = c.keycode_for(sym, &avoid)?;
                c.key(kc, true)?;
                Ok(kc)
            })?;
            pressed.push(kc);
        }
        x11.with(|c| c.sync())?;
        f()
    })();
    let released = x11.with(|c| {
        for kc in pressed.iter().rev() {
            c.key(*kc, false)?;
        }
        c.sync()
    });
    match (r, released) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}
