//! Mouse sequences over XTEST (spec computer-use.md §4, sdk-0.226 §3.6 and §4.3) and the
//! normalisation of buttons, directions, amounts and click counts.

use std::thread::sleep;
use std::time::Duration;

use computer_use_api::input::{MAX_CLICKS, MAX_SCROLL_AMOUNT};

use super::modifiers::with_modifiers;
use super::quote::go_quote as q;
use crate::x11::error::XError;
use crate::x11::service::X11;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Pause between the clicks of a multi-click: well inside every toolkit's double-click time.
const MULTI_CLICK_GAP: Duration = ms(40);

/// `left` (also empty), `middle`, `right` → X button 1, 2, 3.
pub fn button(raw: &str) -> Result<u8, String> {
    match raw.trim().to_lowercase().as_str() {
        "" | "left" => Ok(1),
        "middle" => Ok(2),
        "right" => Ok(3),
        _ => Err(format!("unsupported mouse button {}: expected one of left, right, middle", q(raw))),
    }
}

/// Wheel direction → X button: up 4, down 5, left 6, right 7.
pub fn scroll_button(raw: &str) -> Result<u8, String> {
    match raw.trim().to_lowercase().as_str() {
        "up" => Ok(4),
        "down" => Ok(5),
        "left" => Ok(6),
        "right" => Ok(7),
        _ => Err(format!("unsupported scroll direction {}: expected up, down, left, or right", q(raw))),
    }
}

pub fn scroll_amount(amount: Option<i64>) -> Result<u32, String> {
    match amount.unwrap_or(0) {
        n if n < 0 => Err("scroll amount must be greater than or equal to 0".into()),
        0 => Ok(1),
        n if n > MAX_SCROLL_AMOUNT => Err(format!("scroll amount must be at most {MAX_SCROLL_AMOUNT}")),
        n => Ok(n as u32),
    }
}

/// `clicks` overrides `double`; when given it must be 1..=10 (an explicit 0 included).
pub fn click_count(clicks: Option<i64>, double: bool) -> Result<u32, String> {
    match clicks {
        None => Ok(if double { 2 } else { 1 }),
        Some(n @ 1..=MAX_CLICKS) => Ok(n as u32),
        Some(_) => Err(format!("clicks must be between 1 and {MAX_CLICKS}")),
    }
}

/// The 20 intermediate points of a drag, integer-truncated like the reference.
pub fn drag_path(start: (i32, i32), end: (i32, i32)) -> Vec<(i32, i32)> {
    (1..=20i64)
        .map(|i| {
            let x = start.0 as i64 + (end.0 as i64 - start.0 as i64) * i / 20;
            let y = start.1 as i64 + (end.1 as i64 - start.1 as i64) * i / 20;
            (x as i32, y as i32)
        })
        .collect()
}

pub fn position(x11: &X11) -> Result<(i32, i32), XError> {
    x11.with(|c| c.pointer())
}

/// Unlike the reference there is no 50 ms settle pause: the motion is synced with the server
/// before the position is read back, so the answer is already exact (and the pointer settled).
pub fn move_to(x11: &X11, x: i32, y: i32) -> Result<(i32, i32), XError> {
    x11.with(|c| {
        c.motion(x, y)?;
        c.sync()?;
        c.pointer()
    })
}

fn tap_button(x11: &X11, b: u8) -> Result<(), XError> {
    x11.with(|c| {
        c.button(b, true)?;
        c.button(b, false)?;
        c.sync()
    })
}

pub fn click(
    x11: &X11,
    x: i32,
    y: i32,
    b: u8,
    clicks: u32,
    mods: &[&'static str],
) -> Result<(i32, i32), XError> {
    with_modifiers(x11, mods, || {
        x11.with(|c| {
            c.motion(x, y)?;
            c.sync()
        })?;
        sleep(ms(100));
        for i in 0..clicks {
            if i > 0 {
                sleep(MULTI_CLICK_GAP);
            }
            tap_button(x11, b)?;
        }
        Ok(())
    })?;
    position(x11)
}

pub fn drag(
    x11: &X11,
    start: (i32, i32),
    end: (i32, i32),
    b: u8,
    mods: &[&'static str],
) -> Result<(i32, i32), XError> {
    let step =
        |f: &dyn Fn(&crate::x11::conn::Conn) -> Result<(), XError>| x11.with(|c| f(c).and_then(|_| c.sync()));
    with_modifiers(x11, mods, || {
        // Press and release only what this sequence pressed, also when a step fails.
        let mut down = false;
        let r = (|| {
            step(&|c| c.motion(start.0, start.1))?;
            sleep(ms(100));
            // One click first: it focuses the window under the start point.
            tap_button(x11, b)?;
            sleep(ms(100));
            step(&|c| c.button(b, false))?;
            sleep(ms(50));
            step(&|c| c.button(b, true))?;
            down = true;
            sleep(ms(300));
            for (px, py) in drag_path(start, end) {
                step(&|c| c.motion(px, py))?;
                sleep(ms(2));
            }
            sleep(ms(100));
            step(&|c| c.button(b, false))?;
            down = false;
            sleep(ms(50));
            Ok(())
        })();
        if down {
            let _ = step(&|c| c.button(b, false));
        }
        r
    })?;
    position(x11)
}

pub fn scroll(x11: &X11, x: i32, y: i32, b: u8, amount: u32, mods: &[&'static str]) -> Result<(), XError> {
    with_modifiers(x11, mods, || {
        x11.with(|c| {
            c.motion(x, y)?;
            c.sync()
        })?;
        sleep(ms(50));
        for i in 0..amount {
            if i > 0 {
                sleep(ms(10));
            }
            tap_button(x11, b)?;
        }
        Ok(())
    })
}

/// `mouse/down` and `mouse/up`: optionally move, then press (held, tracked) or release.
pub fn press(x11: &X11, at: Option<(i32, i32)>, b: u8, down: bool) -> Result<(i32, i32), XError> {
    if let Some((x, y)) = at {
        x11.with(|c| {
            c.motion(x, y)?;
            c.sync()
        })?;
        sleep(ms(50));
    }
    x11.with(|c| {
        c.button(b, down)?;
        c.sync()
    })?;
    if down {
        x11.note_button_down(b);
    } else {
        x11.note_button_up(b);
    }
    position(x11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons() {
        assert_eq!(button("").unwrap(), 1);
        assert_eq!(button(" Left ").unwrap(), 1);
        assert_eq!(button("MIDDLE").unwrap(), 2);
        assert_eq!(button("right").unwrap(), 3);
        assert_eq!(
            button("center").unwrap_err(),
            r#"unsupported mouse button "center": expected one of left, right, middle"#
        );
        assert_eq!(
            button("x\"y").unwrap_err(),
            r#"unsupported mouse button "x\"y": expected one of left, right, middle"#
        );
    }

    #[test]
    fn directions_and_amounts() {
        assert_eq!(scroll_button(" UP").unwrap(), 4);
        assert_eq!(scroll_button("down").unwrap(), 5);
        assert_eq!(scroll_button("Left").unwrap(), 6);
        assert_eq!(scroll_button("right").unwrap(), 7);
        assert_eq!(
            scroll_button("").unwrap_err(),
            r#"unsupported scroll direction "": expected up, down, left, or right"#
        );
        assert_eq!(scroll_amount(None).unwrap(), 1);
        assert_eq!(scroll_amount(Some(0)).unwrap(), 1);
        assert_eq!(scroll_amount(Some(3)).unwrap(), 3);
        assert_eq!(scroll_amount(Some(-1)).unwrap_err(), "scroll amount must be greater than or equal to 0");
        assert!(scroll_amount(Some(1001)).is_err());
    }

    #[test]
    fn click_counts() {
        assert_eq!(click_count(None, false).unwrap(), 1);
        assert_eq!(click_count(None, true).unwrap(), 2);
        assert_eq!(click_count(Some(3), false).unwrap(), 3);
        assert_eq!(click_count(Some(1), true).unwrap(), 1);
        for bad in [0, -1, 11] {
            assert_eq!(click_count(Some(bad), false).unwrap_err(), "clicks must be between 1 and 10");
        }
    }

    #[test]
    fn drag_path_truncates_and_ends_at_the_target() {
        let p = drag_path((0, 0), (10, -10));
        assert_eq!(p.len(), 20);
        assert_eq!(p[0], (0, 0));
        assert_eq!(p[1], (1, -1));
        assert_eq!(p[19], (10, -10));
    }
}
