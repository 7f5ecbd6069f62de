//! The pure part of the clipboard: size limits, Latin-1 for the `STRING` target, and how a
//! large value is cut into INCR chunks.

/// The largest text the clipboard routes move either way (UTF-8 bytes). Bounds what one request
/// can make the agent hold, and what a foreign owner can make it read.
pub const MAX_TEXT_BYTES: usize = computer_use_api::clipboard::MAX_CLIPBOARD_BYTES;

/// The largest piece we put into a property in one request. Values above it go by INCR (ICCCM
/// §2.7.2). Smaller than what BIG-REQUESTS would allow on purpose: requestors (Xlib clients) get
/// a reasonable chunk each time, and the server never holds a 16 MiB property for us.
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// The chunk size for a server whose largest request is `max_request_bytes`: what is left after
/// the `ChangeProperty` header (24 bytes, 28 with BIG-REQUESTS), capped at [`MAX_CHUNK_BYTES`].
pub fn chunk_size(max_request_bytes: usize) -> usize {
    max_request_bytes.saturating_sub(32).clamp(1, MAX_CHUNK_BYTES)
}

/// Whether a value of `len` bytes goes by INCR rather than in one property.
pub fn needs_incr(len: usize, chunk: usize) -> bool {
    len > chunk
}

/// The piece of an INCR transfer that starts at `offset`: the next chunk, or an empty slice once
/// everything was sent (the empty property that ends the transfer).
pub fn next_chunk(data: &[u8], offset: usize, chunk: usize) -> &[u8] {
    let start = offset.min(data.len());
    &data[start..(start + chunk).min(data.len())]
}

/// The text as Latin-1 (`STRING`), or None when it has a character beyond U+00FF: ICCCM's
/// `STRING` is Latin-1, so such a value is refused for that target instead of mangled.
pub fn to_latin1(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Whether the text fits Latin-1, without building the copy (for `TARGETS`).
pub fn is_latin1(text: &str) -> bool {
    text.chars().all(|c| u32::from(c) <= 0xFF)
}

pub fn from_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_follow_the_server_limit() {
        // Without BIG-REQUESTS: 65535 four-byte units.
        assert_eq!(chunk_size(262_140), 262_108);
        assert_eq!(chunk_size(16 * 1024 * 1024), MAX_CHUNK_BYTES);
        assert_eq!(chunk_size(4), 1, "never zero, so a transfer always progresses");
    }

    #[test]
    fn incr_chunks_cover_the_value_then_end_empty() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let chunk = 300;
        assert!(needs_incr(data.len(), chunk));
        assert!(!needs_incr(300, chunk));
        let mut offset = 0;
        let mut joined = Vec::new();
        let mut pieces = 0;
        loop {
            let piece = next_chunk(&data, offset, chunk);
            if piece.is_empty() {
                break;
            }
            assert!(piece.len() <= chunk);
            joined.extend_from_slice(piece);
            offset += piece.len();
            pieces += 1;
        }
        assert_eq!((joined, pieces), (data.clone(), 4));
        assert!(next_chunk(&data, 5000, chunk).is_empty(), "past the end is the end");
    }

    #[test]
    fn latin1_both_ways() {
        assert_eq!(to_latin1("abc é ÿ").unwrap(), b"abc \xe9 \xff");
        assert_eq!(to_latin1("ő"), None);
        assert_eq!(to_latin1("日本"), None);
        assert_eq!(from_latin1(b"caf\xe9"), "café");
        assert!(is_latin1("abc é ÿ"));
        assert!(!is_latin1("ő"));
    }
}
