//! Filesystem paths as `file://` URIs.

use std::borrow::Cow;
use std::path::Path;

use lsp_types::Uri;

/// Turns a filesystem path into a `file://` URI, percent-encoding its raw bytes.
///
/// Every byte except the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) and `/` is
/// written as `%XX` with upper-case hex, so spaces, `%`, `#`, `?`, non-ASCII UTF-8 and bytes
/// that are not UTF-8 at all survive the trip. This is the same normalisation `vscode-uri`
/// applies (the library pyright and typescript-language-server use), so servers echo back the
/// very URIs they were sent.
///
/// A relative path is first made absolute against the process's current directory
/// (`std::path::absolute`); an empty path becomes `/`.
pub fn file_uri(path: &Path) -> Uri {
    let absolute: Cow<'_, Path> = if path.is_absolute() {
        Cow::Borrowed(path)
    } else {
        std::path::absolute(path).map(Cow::Owned).unwrap_or(Cow::Borrowed(Path::new("/")))
    };
    let mut text = String::from("file://");
    for &b in absolute.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            text.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            text.push('%');
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    // Only unreserved characters, `/` and `%XX` escapes follow an empty authority, which is
    // always a valid URI (the test over all 256 byte values proves it), so this cannot fail.
    text.parse().expect("a percent-encoded absolute path is a valid file URI")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    fn uri(p: &[u8]) -> String {
        file_uri(Path::new(OsStr::from_bytes(p))).as_str().to_owned()
    }

    #[test]
    fn plain_paths_stay_readable() {
        assert_eq!(uri(b"/home/user/project/main.py"), "file:///home/user/project/main.py");
        assert_eq!(uri(b"/a/b-c_d.e~f/"), "file:///a/b-c_d.e~f/");
        assert_eq!(uri(b"/"), "file:///");
    }

    #[test]
    fn reserved_and_special_characters_are_encoded() {
        assert_eq!(uri(b"/tmp/my file.py"), "file:///tmp/my%20file.py");
        assert_eq!(uri(b"/tmp/100%.py"), "file:///tmp/100%25.py");
        assert_eq!(uri(b"/tmp/a#b?c.py"), "file:///tmp/a%23b%3Fc.py");
        assert_eq!(uri(b"/tmp/a:b@c;d=e&f+g,h"), "file:///tmp/a%3Ab%40c%3Bd%3De%26f%2Bg%2Ch");
    }

    #[test]
    fn unicode_and_non_utf8_bytes_are_encoded_bytewise() {
        assert_eq!(uri("/tmp/é/日本.py".as_bytes()), "file:///tmp/%C3%A9/%E6%97%A5%E6%9C%AC.py");
        assert_eq!(uri(b"/tmp/\xff\xfe\x00\n.py"), "file:///tmp/%FF%FE%00%0A.py");
    }

    #[test]
    fn relative_paths_become_absolute() {
        let got = uri(b"some dir/x.py");
        let cwd = file_uri(&std::env::current_dir().unwrap());
        assert_eq!(got, format!("{}/some%20dir/x.py", cwd.as_str().trim_end_matches('/')));
        assert_eq!(uri(b""), "file:///");
    }

    #[test]
    fn every_byte_value_gives_a_valid_uri() {
        let all: Vec<u8> = (1..=255u8).collect();
        let mut path = b"/".to_vec();
        path.extend(all.iter().filter(|&&b| b != b'/'));
        let got = uri(&path);
        assert!(got.starts_with("file:///%01%02"));
        // Decoding gives the original bytes back.
        let encoded = got.strip_prefix("file://").unwrap().as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < encoded.len() {
            if encoded[i] == b'%' {
                let hex = std::str::from_utf8(&encoded[i + 1..i + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                decoded.push(encoded[i]);
                i += 1;
            }
        }
        assert_eq!(decoded, path);
        assert_eq!(uri(b"/\x00"), "file:///%00");
    }
}
