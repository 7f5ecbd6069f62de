//! Keysym ↔ keycode bookkeeping over the core keyboard mapping, and the keysyms of the key
//! names the API accepts (spec computer-use.md §5.4).

/// The core keyboard mapping: `per_keycode` keysyms for each keycode from `min`.
#[derive(Debug, Clone)]
pub struct Keymap {
    min: u8,
    pub per_keycode: u8,
    syms: Vec<u32>,
}

impl Keymap {
    pub fn new(min: u8, per_keycode: u8, syms: Vec<u32>) -> Keymap {
        Keymap { min, per_keycode: per_keycode.max(1), syms }
    }

    fn count(&self) -> usize {
        self.syms.len() / self.per_keycode as usize
    }

    pub fn keysyms_of(&self, keycode: u8) -> &[u32] {
        let per = self.per_keycode as usize;
        let i = keycode.wrapping_sub(self.min) as usize;
        if keycode < self.min || i >= self.count() { &[] } else { &self.syms[i * per..(i + 1) * per] }
    }

    pub fn set(&mut self, keycode: u8, syms: &[u32]) {
        let per = self.per_keycode as usize;
        if keycode < self.min || syms.len() != per {
            return;
        }
        let i = (keycode - self.min) as usize;
        if i < self.count() {
            self.syms[i * per..(i + 1) * per].copy_from_slice(syms);
        }
    }

    /// The keycode producing `keysym` in the first group: unshifted (column 0) first, then
    /// shifted (column 1, the bool says Shift is needed).
    pub fn lookup(&self, keysym: u32) -> Option<(u8, bool)> {
        if keysym == 0 {
            return None;
        }
        let per = self.per_keycode as usize;
        for col in 0..per.min(2) {
            for i in 0..self.count() {
                if self.syms[i * per + col] == keysym {
                    return Some((self.min + i as u8, col == 1));
                }
            }
        }
        None
    }

    /// Keycodes bound to nothing at all, highest first (the least likely to be grabbed later).
    pub fn spare_keycodes(&self) -> Vec<u8> {
        let per = self.per_keycode as usize;
        (0..self.count())
            .rev()
            .filter(|&i| self.syms[i * per..(i + 1) * per].iter().all(|&s| s == 0))
            .map(|i| self.min + i as u8)
            .collect()
    }
}

/// The keysym typing `c` produces: Latin-1 characters are their own keysym, everything else
/// uses the Unicode keysym range (0x0100_0000 + code point), which every XKB client resolves.
pub fn char_keysym(c: char) -> u32 {
    let cp = c as u32;
    if (0x20..=0x7e).contains(&cp) || (0xa0..=0xff).contains(&cp) { cp } else { 0x0100_0000 | cp }
}

pub const SHIFT_L: u32 = 0xffe1;
pub const RETURN: u32 = 0xff0d;

/// The keysym of a canonical key token (the output of key normalisation) or of a canonical
/// modifier (`ctrl`, `alt`, `shift`, `cmd`).
pub fn token_keysym(token: &str) -> Option<u32> {
    let named = match token {
        "alt" | "lalt" => 0xffe9,
        "ralt" => 0xffea,
        "ctrl" | "lctrl" => 0xffe3,
        "rctrl" => 0xffe4,
        "shift" | "lshift" => 0xffe1,
        "rshift" => 0xffe2,
        "cmd" | "lcmd" => 0xffeb,
        "rcmd" => 0xffec,
        "backspace" => 0xff08,
        "capslock" => 0xffe5,
        "delete" => 0xffff,
        "down" => 0xff54,
        "end" => 0xff57,
        "enter" => RETURN,
        "escape" => 0xff1b,
        "home" => 0xff50,
        "insert" => 0xff63,
        "left" => 0xff51,
        "menu" => 0xff67,
        "pagedown" => 0xff56,
        "pageup" => 0xff55,
        "right" => 0xff53,
        "space" => 0x20,
        "tab" => 0xff09,
        "up" => 0xff52,
        "num*" => 0xffaa,
        "num+" => 0xffab,
        "num-" => 0xffad,
        "num." => 0xffae,
        "num/" => 0xffaf,
        "num_enter" => 0xff8d,
        "num_equal" => 0xffbd,
        "num_lock" => 0xff7f,
        _ => 0,
    };
    if named != 0 {
        return Some(named);
    }
    if let Some(n) = token.strip_prefix('f').and_then(|n| n.parse::<u32>().ok())
        && (1..=24).contains(&n)
    {
        return Some(0xffbe + n - 1);
    }
    if let Some(n) = token.strip_prefix("num").and_then(|n| n.parse::<u32>().ok())
        && n <= 9
        && token.len() == 4
    {
        return Some(0xffb0 + n);
    }
    let mut chars = token.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_lowercase() || c.is_ascii_digit() || "',-./;=[\\]`".contains(c) => {
            Some(c as u32)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Keymap {
        // keycodes 8..=11, two columns: a/A, nothing, 1/!, nothing.
        Keymap::new(8, 2, vec![0x61, 0x41, 0, 0, 0x31, 0x21, 0, 0])
    }

    #[test]
    fn lookup_prefers_the_unshifted_column() {
        let km = sample();
        assert_eq!(km.lookup(0x61), Some((8, false)));
        assert_eq!(km.lookup(0x41), Some((8, true)));
        assert_eq!(km.lookup(0x21), Some((10, true)));
        assert_eq!(km.lookup(0x20ac), None);
        assert_eq!(km.lookup(0), None);
    }

    #[test]
    fn spare_keycodes_are_the_empty_ones_highest_first_and_set_rebinds() {
        let mut km = sample();
        assert_eq!(km.spare_keycodes(), vec![11, 9]);
        km.set(11, &[0x10020ac, 0x10020ac]);
        assert_eq!(km.lookup(0x10020ac), Some((11, false)));
        assert_eq!(km.spare_keycodes(), vec![9]);
        assert_eq!(km.keysyms_of(11), &[0x10020ac, 0x10020ac]);
        assert_eq!(km.keysyms_of(200), &[] as &[u32]);
    }

    #[test]
    fn char_keysyms_use_latin1_or_the_unicode_range() {
        assert_eq!(char_keysym('a'), 0x61);
        assert_eq!(char_keysym('é'), 0xe9);
        assert_eq!(char_keysym('€'), 0x0100_20ac);
        assert_eq!(char_keysym('ж'), 0x0100_0436);
    }

    #[test]
    fn every_key_token_has_a_keysym() {
        for t in [
            "a", "z", "0", "9", "'", "`", "\\", "f1", "f24", "num0", "num9", "num*", "num_lock", "cmd",
            "rcmd", "enter", "pagedown",
        ] {
            assert!(token_keysym(t).is_some(), "{t}");
        }
        assert_eq!(token_keysym("f12"), Some(0xffc9));
        assert_eq!(token_keysym("f25"), None);
        assert_eq!(token_keysym("num10"), None);
        assert_eq!(token_keysym("A"), None);
    }
}
