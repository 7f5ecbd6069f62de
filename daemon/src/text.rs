//! Text the daemon hands to clients: process output as JSON strings, and OS errors in the words
//! users know from the reference.

/// Decodes `bytes` as UTF-8, replacing **each** byte of an invalid sequence with U+FFFD, as Go's
/// JSON encoder does. (`String::from_utf8_lossy` replaces a whole invalid sequence with a single
/// U+FFFD; users comparing byte counts with the reference see the difference.)
pub fn lossy_per_byte(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // `valid_up_to` guarantees this prefix is UTF-8.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                out.extend(std::iter::repeat_n('\u{FFFD}', bad));
                bytes = &rest[bad..];
            }
        }
    }
}

/// The OS error in the words users know from the reference (`no such file or directory`):
/// lower-case first letter, without Rust's `(os error N)` suffix.
pub fn os_error_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// Standard base64 with padding (what `base64 -d` and the clients read).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes base64 in either alphabet (standard `+/` or URL-safe `-_`), with or without `=`
/// padding; `None` when it is not base64. Browsers send URL-safe tokens in sub-protocols,
/// other clients the standard alphabet.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let s = s.trim_end_matches('=');
    STANDARD_NO_PAD.decode(s).or_else(|_| URL_SAFE_NO_PAD.decode(s)).ok()
}

#[cfg(test)]
mod tests {
    use super::{base64_decode, base64_encode, lossy_per_byte, os_error_text};

    #[test]
    fn base64_encodes_per_rfc4648() {
        for (plain, encoded) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
        }
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xfe]), "+//+");
    }

    #[test]
    fn base64_in_both_alphabets() {
        assert_eq!(base64_decode("aGk_Pz8-").unwrap(), b"hi???>");
        assert_eq!(base64_decode("aGk/Pz8+").unwrap(), b"hi???>");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YQ").unwrap(), b"a");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Y"), None);
        assert_eq!(base64_decode("a!b="), None);
    }

    #[test]
    fn os_error_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error_text(&e), "no such file or directory");
        assert_eq!(os_error_text(&std::io::Error::other("Custom")), "custom");
    }

    #[test]
    fn each_invalid_byte_is_replaced() {
        assert_eq!(lossy_per_byte(b"plain \xe2\x82\xac"), "plain €");
        assert_eq!(lossy_per_byte(b"a\xe2\x82x\n"), "a\u{FFFD}\u{FFFD}x\n");
        assert_eq!(lossy_per_byte(b"\xff"), "\u{FFFD}");
        assert_eq!(lossy_per_byte(b"end\xf0\x9f\x98"), "end\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(lossy_per_byte(b"\xc0\xafz"), "\u{FFFD}\u{FFFD}z");
        assert_eq!(lossy_per_byte(b""), "");
    }
}
