//! Key, modifier and hotkey normalisation with the reference's exact messages
//! (spec computer-use.md §5.3–5.5), and the splitting of `keyboard/type` text (§5.1).

use super::quote::go_quote as q;

/// A canonical key token and, for modifier keys, their family (`ctrl`, `alt`, `shift`, `cmd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub token: String,
    pub family: Option<&'static str>,
}

/// A main key with the modifiers to hold around it, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chord {
    pub key: String,
    pub modifiers: Vec<&'static str>,
}

const SUPPORTED: &str = "ctrl, alt, shift, cmd";

fn modifier_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "ctrl" | "control" => "ctrl",
        "alt" | "option" => "alt",
        "shift" => "shift",
        "cmd" | "command" | "meta" | "super" | "win" | "windows" => "cmd",
        _ => return None,
    })
}

fn main_key_alias(name: &str) -> &str {
    match name {
        "cmd" | "command" | "meta" | "super" | "win" | "windows" => "cmd",
        "control" | "ctrl" => "ctrl",
        "option" => "alt",
        "del" => "delete",
        "esc" => "escape",
        "return" => "enter",
        "spacebar" => "space",
        "page_up" => "pageup",
        "page_down" => "pagedown",
        "left_alt" => "lalt",
        "right_alt" => "ralt",
        "left_cmd" | "left_command" => "lcmd",
        "right_cmd" | "right_command" => "rcmd",
        "left_control" | "left_ctrl" => "lctrl",
        "right_control" | "right_ctrl" => "rctrl",
        "left_shift" => "lshift",
        "right_shift" => "rshift",
        other => other,
    }
}

/// The named-key table: canonical name → (emitted token, modifier family).
fn named_key(name: &str) -> Option<(String, Option<&'static str>)> {
    let family = match name {
        "alt" | "lalt" | "ralt" => Some("alt"),
        "ctrl" | "lctrl" | "rctrl" => Some("ctrl"),
        "shift" | "lshift" | "rshift" => Some("shift"),
        "cmd" | "lcmd" | "rcmd" => Some("cmd"),
        _ => None,
    };
    if family.is_some() {
        return Some((name.to_owned(), family));
    }
    let token = match name {
        "backspace" | "capslock" | "delete" | "down" | "end" | "enter" | "escape" | "home" | "insert"
        | "left" | "menu" | "pagedown" | "pageup" | "right" | "space" | "tab" | "up" | "num_enter"
        | "num_equal" | "num_lock" => name,
        "num_asterisk" => "num*",
        "num_plus" => "num+",
        "num_minus" => "num-",
        "num_decimal" => "num.",
        "num_slash" => "num/",
        _ => {
            let f = name
                .strip_prefix('f')
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| (1..=24).contains(n));
            let num = name.strip_prefix("num").filter(|n| n.len() == 1 && n.as_bytes()[0].is_ascii_digit());
            match (f, num) {
                (Some(_), _) | (_, Some(_)) => name,
                _ => return None,
            }
        }
    };
    Some((token.to_owned(), None))
}

fn named_token(raw: &str) -> String {
    raw.to_lowercase().replace('-', "_")
}

fn unsupported_modifier(raw: &str) -> String {
    format!("unsupported modifier {}; supported modifiers: {SUPPORTED}", q(raw))
}

fn whitespace_key_error(raw: &str) -> String {
    match raw {
        " " => format!("unsupported key {}; use press(\"space\") or type(\" \")", q(raw)),
        "\t" => format!("unsupported key {}; use press(\"tab\") or type(\"\\t\")", q(raw)),
        "\n" | "\r" => format!("unsupported key {}; use press(\"enter\") or type({})", q(raw), q(raw)),
        _ => format!("unsupported key {}; use a named key such as \"space\", \"tab\", or \"enter\"", q(raw)),
    }
}

fn control_key_error(raw: &str) -> String {
    if matches!(raw, "\t" | "\n" | "\r") {
        return whitespace_key_error(raw);
    }
    format!("unsupported key {}; use type({}) for text input", q(raw), q(raw))
}

fn unicode_key_error(raw: &str) -> String {
    format!("unsupported key {}; use type({}) for text input", q(raw), q(raw))
}

fn unknown_key_error(raw: &str) -> String {
    format!("unsupported key {}; see supported keyboard key names in the computer-use docs", q(raw))
}

fn shifted_base(c: char) -> Option<&'static str> {
    Some(match c {
        '!' => "1",
        '"' => "'",
        '#' => "3",
        '$' => "4",
        '%' => "5",
        '&' => "7",
        '(' => "9",
        ')' => "0",
        '*' => "8",
        '+' => "=",
        ':' => ";",
        '<' => ",",
        '>' => ".",
        '?' => "/",
        '@' => "2",
        '^' => "6",
        '_' => "-",
        '{' => "[",
        '|' => "\\",
        '}' => "]",
        '~' => "`",
        _ => return None,
    })
}

/// Normalises a main key token (§5.4).
pub fn normalize_key(raw: &str) -> Result<Key, String> {
    if raw.is_empty() {
        return Err(format!("unsupported key {}: empty key token", q(raw)));
    }
    let canonical_numpad = match raw.to_lowercase().as_str() {
        "num*" => Some("num_asterisk"),
        "num+" => Some("num_plus"),
        "num-" => Some("num_minus"),
        "num." => Some("num_decimal"),
        "num/" => Some("num_slash"),
        _ => None,
    };
    if let Some(c) = canonical_numpad {
        return Err(format!("unsupported key {}; use {}", q(raw), q(c)));
    }
    let mut chars = raw.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return normalize_single(raw, c);
    }
    if raw.chars().any(char::is_control) {
        return Err(control_key_error(raw));
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(whitespace_key_error(raw));
    }
    if !raw.is_ascii() {
        return Err(unicode_key_error(raw));
    }
    let name = named_token(raw);
    match named_key(main_key_alias(&name)) {
        Some((token, family)) => Ok(Key { token, family }),
        None => Err(unknown_key_error(raw)),
    }
}

fn normalize_single(raw: &str, c: char) -> Result<Key, String> {
    if c.is_whitespace() {
        return Err(whitespace_key_error(raw));
    }
    if c.is_control() {
        return Err(control_key_error(raw));
    }
    if !c.is_ascii() {
        return Err(unicode_key_error(raw));
    }
    if c.is_ascii_alphabetic() {
        return Ok(Key { token: c.to_ascii_lowercase().to_string(), family: None });
    }
    if c.is_ascii_digit() || "',-./;=[\\]`".contains(c) {
        return Ok(Key { token: c.to_string(), family: None });
    }
    if let Some(base) = shifted_base(c) {
        return Err(format!(
            "unsupported key {}; use press({}, [\"shift\"]) for a shifted key or type({}) for text",
            q(raw),
            q(base),
            q(raw)
        ));
    }
    Err(unknown_key_error(raw))
}

/// Normalises one modifier token (§5.3).
pub fn normalize_modifier(raw: &str) -> Result<&'static str, String> {
    if raw.is_empty() || raw.chars().any(|c| c.is_control() || c.is_whitespace()) || !raw.is_ascii() {
        return Err(unsupported_modifier(raw));
    }
    let name = named_token(raw);
    if let Some(m) = modifier_alias(&name) {
        return Ok(m);
    }
    if named_key(&name).is_some() {
        return Err(format!(
            "unsupported modifier {}; supported modifiers: {SUPPORTED}; left/right-specific modifier keys are only supported as the main key",
            q(raw)
        ));
    }
    Err(unsupported_modifier(raw))
}

/// Adds a normalised modifier, rejecting repeats (`seen` keeps the raw token per canonical one).
fn push_modifier(
    mods: &mut Vec<&'static str>,
    seen: &mut Vec<(&'static str, String)>,
    m: &'static str,
    raw: &str,
    ctx: &str,
) -> Result<(), String> {
    if let Some((_, prev)) = seen.iter().find(|(k, _)| *k == m) {
        if named_token(prev) == named_token(raw) {
            return Err(format!("duplicate modifier {} in {ctx}", q(m)));
        }
        return Err(format!("duplicate modifier usage after normalization in {ctx}"));
    }
    seen.push((m, raw.to_owned()));
    mods.push(m);
    Ok(())
}

fn check_conflict(key: &Key, mods: &[&'static str], ctx: &str) -> Result<(), String> {
    match key.family {
        Some(f) if mods.contains(&f) => Err(format!("duplicate modifier usage after normalization in {ctx}")),
        _ => Ok(()),
    }
}

/// Normalises the modifiers of click, drag and scroll (no main key, context as for `press`).
pub fn normalize_modifiers(raw: &[String], ctx: &str) -> Result<Vec<&'static str>, String> {
    let mut mods = Vec::with_capacity(raw.len());
    let mut seen = Vec::new();
    for r in raw {
        let m = normalize_modifier(r)?;
        push_modifier(&mut mods, &mut seen, m, r, ctx)?;
    }
    Ok(mods)
}

fn press_context(key: &str, modifiers: &[String]) -> String {
    let list: Vec<String> = modifiers.iter().map(|m| q(m)).collect();
    format!("press({}, [{}])", q(key), list.join(", "))
}

/// `keyboard/key`: the key, then each modifier, then conflicts (§5.2).
pub fn normalize_press(key: &str, modifiers: &[String]) -> Result<Chord, String> {
    let k = normalize_key(key)?;
    let ctx = press_context(key, modifiers);
    let mods = normalize_modifiers(modifiers, &ctx)?;
    check_conflict(&k, &mods, &ctx)?;
    Ok(Chord { key: k.token, modifiers: mods })
}

/// `keyboard/hotkey` (§5.5).
pub fn normalize_hotkey(raw: &str) -> Result<Chord, String> {
    let bad = |why: &str| format!("invalid hotkey {}: {why}", q(raw));
    if raw.trim().is_empty() {
        return Err(bad("empty key token"));
    }
    let mut parts = Vec::new();
    for part in raw.split('+') {
        let t = part.trim();
        if t.is_empty() {
            return Err(bad(if part.is_empty() {
                "empty key token"
            } else {
                "empty key token after trimming"
            }));
        }
        if t.split_whitespace().count() > 1 {
            return Err(bad("only a single chord is supported"));
        }
        parts.push(t);
    }
    let (main, rest) = parts.split_last().expect("at least one part");
    let key = normalize_key(main).map_err(|e| bad(&e))?;
    let ctx = format!("hotkey({})", q(raw));
    let mut mods = Vec::new();
    let mut seen = Vec::new();
    for part in rest {
        match normalize_modifier(part) {
            Ok(m) => push_modifier(&mut mods, &mut seen, m, part, &ctx).map_err(|e| bad(&e))?,
            Err(_) => {
                return Err(match normalize_key(part) {
                    Ok(k) if k.family.is_some() => bad(&format!(
                        "unsupported modifier {}; supported modifiers: {SUPPORTED}; left/right-specific modifier keys are only supported as the main key",
                        q(part)
                    )),
                    Ok(_) => bad("chords may contain at most one non-modifier key"),
                    Err(_) => bad(&unsupported_modifier(part)),
                });
            }
        }
    }
    check_conflict(&key, &mods, &ctx).map_err(|e| bad(&e))?;
    Ok(Chord { key: key.token, modifiers: mods })
}

/// One step of `keyboard/type`: a run of characters, or Enter for a line break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeAction {
    Text(String),
    Enter,
}

/// Splits text into typing actions, rejecting what `type` must not translate (§5.1).
pub fn typing_actions(text: &str) -> Result<Vec<TypeAction>, String> {
    let text = text.replace("\r\n", "\n");
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        match c {
            '\n' | '\r' => {
                if !run.is_empty() {
                    out.push(TypeAction::Text(std::mem::take(&mut run)));
                }
                out.push(TypeAction::Enter);
            }
            '\t' => {
                return Err("keyboard.type does not translate '\\t' to Tab; use keyboard.press(\"tab\") for Tab key events".into());
            }
            '\u{2028}' | '\u{2029}' => {
                return Err(format!("unsupported separator character in keyboard.type: U+{:04X}", c as u32));
            }
            c if c.is_control() => {
                return Err(format!("unsupported control character in keyboard.type: U+{:04X}", c as u32));
            }
            c => run.push(c),
        }
    }
    if !run.is_empty() {
        out.push(TypeAction::Text(run));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn keys_normalise_to_tokens() {
        let k = |raw: &str| normalize_key(raw).unwrap().token;
        assert_eq!(k("A"), "a");
        assert_eq!(k("7"), "7");
        assert_eq!(k("\\"), "\\");
        assert_eq!(k("Return"), "enter");
        assert_eq!(k("ESC"), "escape");
        assert_eq!(k("page-down"), "pagedown");
        assert_eq!(k("Left_Shift"), "lshift");
        assert_eq!(k("num_asterisk"), "num*");
        assert_eq!(k("F24"), "f24");
        assert_eq!(k("num5"), "num5");
        assert_eq!(normalize_key("windows").unwrap(), Key { token: "cmd".into(), family: Some("cmd") });
        assert_eq!(normalize_key("rctrl").unwrap().family, Some("ctrl"));
    }

    #[test]
    fn key_errors_are_the_reference_texts() {
        let e = |raw: &str| normalize_key(raw).unwrap_err();
        assert_eq!(e(""), r#"unsupported key "": empty key token"#);
        assert_eq!(e("NUM*"), r#"unsupported key "NUM*"; use "num_asterisk""#);
        assert_eq!(e("num/"), r#"unsupported key "num/"; use "num_slash""#);
        assert_eq!(e(" "), r#"unsupported key " "; use press("space") or type(" ")"#);
        assert_eq!(e("\t"), r#"unsupported key "\t"; use press("tab") or type("\t")"#);
        assert_eq!(e("\n"), r#"unsupported key "\n"; use press("enter") or type("\n")"#);
        assert_eq!(e("\r"), r#"unsupported key "\r"; use press("enter") or type("\r")"#);
        assert_eq!(
            e("\u{a0}"),
            r#"unsupported key "\u00a0"; use a named key such as "space", "tab", or "enter""#
        );
        assert_eq!(e("\u{1}"), r#"unsupported key "\x01"; use type("\x01") for text input"#);
        assert_eq!(e("é"), r#"unsupported key "é"; use type("é") for text input"#);
        assert_eq!(
            e("!"),
            r#"unsupported key "!"; use press("1", ["shift"]) for a shifted key or type("!") for text"#
        );
        assert_eq!(
            e("\""),
            r#"unsupported key "\""; use press("'", ["shift"]) for a shifted key or type("\"") for text"#
        );
        assert_eq!(
            e("|"),
            r#"unsupported key "|"; use press("\\", ["shift"]) for a shifted key or type("|") for text"#
        );
        assert_eq!(
            e("FooBar"),
            r#"unsupported key "FooBar"; see supported keyboard key names in the computer-use docs"#
        );
        assert_eq!(
            e("audio_mute"),
            r#"unsupported key "audio_mute"; see supported keyboard key names in the computer-use docs"#
        );
        assert_eq!(e("a b"), r#"unsupported key "a b"; use a named key such as "space", "tab", or "enter""#);
        assert_eq!(e("ab\u{1}"), r#"unsupported key "ab\x01"; use type("ab\x01") for text input"#);
        assert_eq!(e("\r\n"), r#"unsupported key "\r\n"; use type("\r\n") for text input"#);
        assert_eq!(e("héllo"), r#"unsupported key "héllo"; use type("héllo") for text input"#);
        assert_eq!(
            e("f25"),
            r#"unsupported key "f25"; see supported keyboard key names in the computer-use docs"#
        );
    }

    #[test]
    fn modifiers_normalise_and_reject() {
        assert_eq!(normalize_modifier("Control").unwrap(), "ctrl");
        assert_eq!(normalize_modifier("OPTION").unwrap(), "alt");
        assert_eq!(normalize_modifier("win").unwrap(), "cmd");
        assert_eq!(
            normalize_modifier("").unwrap_err(),
            r#"unsupported modifier ""; supported modifiers: ctrl, alt, shift, cmd"#
        );
        assert_eq!(
            normalize_modifier("c").unwrap_err(),
            r#"unsupported modifier "c"; supported modifiers: ctrl, alt, shift, cmd"#
        );
        assert_eq!(
            normalize_modifier("ctrl ").unwrap_err(),
            r#"unsupported modifier "ctrl "; supported modifiers: ctrl, alt, shift, cmd"#
        );
        assert_eq!(
            normalize_modifier("lshift").unwrap_err(),
            r#"unsupported modifier "lshift"; supported modifiers: ctrl, alt, shift, cmd; left/right-specific modifier keys are only supported as the main key"#
        );
    }

    #[test]
    fn press_checks_duplicates_and_conflicts() {
        assert_eq!(
            normalize_press("c", &s(&["ctrl", "shift"])).unwrap(),
            Chord { key: "c".into(), modifiers: vec!["ctrl", "shift"] }
        );
        assert_eq!(
            normalize_press("c", &s(&["ctrl", "ctrl"])).unwrap_err(),
            r#"duplicate modifier "ctrl" in press("c", ["ctrl", "ctrl"])"#
        );
        assert_eq!(
            normalize_press("c", &s(&["Ctrl", "ctrl"])).unwrap_err(),
            r#"duplicate modifier "ctrl" in press("c", ["Ctrl", "ctrl"])"#
        );
        assert_eq!(
            normalize_press("c", &s(&["cmd", "meta"])).unwrap_err(),
            r#"duplicate modifier usage after normalization in press("c", ["cmd", "meta"])"#
        );
        assert_eq!(
            normalize_press("lshift", &s(&["shift"])).unwrap_err(),
            r#"duplicate modifier usage after normalization in press("lshift", ["shift"])"#
        );
        assert_eq!(normalize_press("lshift", &s(&["ctrl"])).unwrap().modifiers, vec!["ctrl"]);
        assert_eq!(
            normalize_press("d", &s(&["ctrl", "c"])).unwrap_err(),
            r#"unsupported modifier "c"; supported modifiers: ctrl, alt, shift, cmd"#
        );
        // The key is checked before the modifiers.
        assert!(normalize_press("", &s(&["bogus"])).unwrap_err().starts_with("unsupported key"));
    }

    #[test]
    fn hotkeys() {
        assert_eq!(
            normalize_hotkey(" ctrl + shift + T ").unwrap(),
            Chord { key: "t".into(), modifiers: vec!["ctrl", "shift"] }
        );
        assert_eq!(normalize_hotkey("enter").unwrap(), Chord { key: "enter".into(), modifiers: vec![] });
        let e = |raw: &str| normalize_hotkey(raw).unwrap_err();
        assert_eq!(e("  "), r#"invalid hotkey "  ": empty key token"#);
        assert_eq!(e("ctrl++c"), r#"invalid hotkey "ctrl++c": empty key token"#);
        assert_eq!(e("ctrl+ "), r#"invalid hotkey "ctrl+ ": empty key token after trimming"#);
        assert_eq!(e("ctrl+k ctrl+c"), r#"invalid hotkey "ctrl+k ctrl+c": only a single chord is supported"#);
        assert_eq!(
            e("lshift+a"),
            r#"invalid hotkey "lshift+a": unsupported modifier "lshift"; supported modifiers: ctrl, alt, shift, cmd; left/right-specific modifier keys are only supported as the main key"#
        );
        assert_eq!(
            e("ctrl+c+d"),
            r#"invalid hotkey "ctrl+c+d": chords may contain at most one non-modifier key"#
        );
        assert_eq!(e("a+b"), r#"invalid hotkey "a+b": chords may contain at most one non-modifier key"#);
        assert_eq!(
            e("foo+a"),
            r#"invalid hotkey "foo+a": unsupported modifier "foo"; supported modifiers: ctrl, alt, shift, cmd"#
        );
        assert_eq!(
            e("shift+shift"),
            r#"invalid hotkey "shift+shift": duplicate modifier usage after normalization in hotkey("shift+shift")"#
        );
        assert_eq!(
            e("ctrl+ctrl+a"),
            r#"invalid hotkey "ctrl+ctrl+a": duplicate modifier "ctrl" in hotkey("ctrl+ctrl+a")"#
        );
        assert_eq!(
            e("ctrl+FooBar"),
            r#"invalid hotkey "ctrl+FooBar": unsupported key "FooBar"; see supported keyboard key names in the computer-use docs"#
        );
    }

    #[test]
    fn typing_is_split_and_validated() {
        assert_eq!(
            typing_actions("ab\r\ncd\n\ré").unwrap(),
            vec![
                TypeAction::Text("ab".into()),
                TypeAction::Enter,
                TypeAction::Text("cd".into()),
                TypeAction::Enter,
                TypeAction::Enter,
                TypeAction::Text("é".into())
            ]
        );
        assert_eq!(typing_actions("").unwrap(), vec![]);
        assert_eq!(
            typing_actions("a\tb").unwrap_err(),
            r#"keyboard.type does not translate '\t' to Tab; use keyboard.press("tab") for Tab key events"#
        );
        assert_eq!(
            typing_actions("a\u{2028}").unwrap_err(),
            "unsupported separator character in keyboard.type: U+2028"
        );
        assert_eq!(
            typing_actions("\u{b}").unwrap_err(),
            "unsupported control character in keyboard.type: U+000B"
        );
        assert_eq!(
            typing_actions("\u{85}").unwrap_err(),
            "unsupported control character in keyboard.type: U+0085"
        );
    }
}
