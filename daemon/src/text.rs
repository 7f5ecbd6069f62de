//! Turning process output into JSON strings the way the clients expect.

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

#[cfg(test)]
mod tests {
    use super::lossy_per_byte;

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
