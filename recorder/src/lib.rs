//! Screen recordings.
//!
//! This crate will own the recording lifecycle behind `/computeruse/recordings*` and the
//! dashboard on port 33333: start an `ffmpeg -f x11grab` process per recording, stop it so the
//! container is finalised, list, download and delete the files in the recordings directory, and
//! serve the dashboard's static page. Recording labels end up in file names, so their validation
//! is the first piece that exists.

/// Longest label accepted, in bytes.
pub const MAX_LABEL_LEN: usize = 100;

/// Checks a user-supplied recording label against the contract's rules: the trimmed value is
/// non-empty and does not start with a dot, the whole value is at most 100 bytes, and every
/// character is an ASCII letter, digit, `.`, `_`, `-` or ASCII whitespace (so no path
/// separator can reach the file name).
pub fn is_valid_label(label: &str) -> bool {
    let trimmed = label.trim();
    !trimmed.is_empty()
        && !trimmed.starts_with('.')
        && label.len() <= MAX_LABEL_LEN
        && label.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'-' | b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(is_valid_label("demo run-1.v2"));
        assert!(!is_valid_label(""));
        assert!(!is_valid_label("   "));
        assert!(!is_valid_label(" .hidden"));
        assert!(!is_valid_label("a/b"));
        assert!(!is_valid_label("a\\b"));
        assert!(!is_valid_label("café"));
        assert!(is_valid_label(&"a".repeat(100)));
        assert!(!is_valid_label(&"a".repeat(101)));
    }
}
