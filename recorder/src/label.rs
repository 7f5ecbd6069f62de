//! Recording labels: they end up in file names, so they are checked before anything is spawned.

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

/// The message for a label that fails [`is_valid_label`], as the clients know it.
pub const LABEL_RULES: &str = "invalid label: must be 1-100 characters, cannot start with dot, cannot contain path separators (/ or \\), and can only contain letters, numbers, spaces, dots, underscores, and hyphens";

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
