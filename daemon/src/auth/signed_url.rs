//! Signed file URLs, as the SDK's `Sandbox.download_url()` / `upload_url()` build them:
//! `signature` = `v1_` + unpadded base64url of HMAC-SHA256(key, `v1:files:{METHOD}:{path}:{expires}`)
//! with METHOD `GET` for downloads (HEAD uses the GET signature) and `POST` for uploads, `path`
//! the decoded `path` query value and `expires` unix seconds as sent (`0` = never expires).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The only scheme there is.
pub const SCHEME: &str = "v1_";

/// Why a signed URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the signed URL expired at {at}")]
    Expired { at: String },
    #[error("the signature's scheme is not supported (expected a signature starting with {SCHEME})")]
    Scheme,
    #[error("the signature is not unpadded base64url")]
    Encoding,
    #[error("the signature does not match this method, path and expiry")]
    Mismatch,
}

/// The signature of `method` on `path` until `expires` (what the SDK computes).
pub fn sign(key: &[u8], method: &str, path: &[u8], expires: &str) -> String {
    format!("{SCHEME}{}", URL_SAFE_NO_PAD.encode(mac(key, method, path, expires)))
}

fn mac(key: &[u8], method: &str, path: &[u8], expires: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(b"v1:files:");
    mac.update(method.as_bytes());
    mac.update(b":");
    mac.update(path);
    mac.update(b":");
    mac.update(expires.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Checks `signature` for `method` (`GET` or `POST`) on `path` with `expires` (decimal unix
/// seconds, checked by the caller) at `now` (unix seconds). The expiry is checked first, so an
/// expired URL says so whatever its signature; the MAC is compared with
/// [`crate::secret::matches`].
pub fn verify(
    key: &[u8],
    method: &str,
    path: &[u8],
    expires: &str,
    signature: &str,
    now: u64,
) -> Result<(), Refusal> {
    let deadline: u64 = expires.parse().map_err(|_| Refusal::Mismatch)?;
    if deadline != 0 && now > deadline {
        let at = jiff::Timestamp::from_second(deadline as i64)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| format!("{deadline} (unix seconds)"));
        return Err(Refusal::Expired { at });
    }
    let encoded = signature.strip_prefix(SCHEME).ok_or(Refusal::Scheme)?;
    let given = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| Refusal::Encoding)?;
    if crate::secret::matches(&mac(key, method, path, expires), &given) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"signing-key-for-tests";
    const NOW: u64 = 1_800_000_000;

    #[test]
    fn matches_the_sdks_construction() {
        // From daytona._utils.file_url_signing.compute_file_url_signature(
        //     "signing-key-for-tests", "GET", "/home/daytona/a b.txt", 1800003600).
        assert_eq!(
            sign(KEY, "GET", b"/home/daytona/a b.txt", "1800003600"),
            "v1_Y7MIYK8TUGRqOETHUJ6pw7-RS_44BiGxASeb8fx7mOM"
        );
    }

    #[test]
    fn valid_and_never_expiring() {
        let sig = sign(KEY, "GET", b"/w/f", "1800000100");
        assert_eq!(verify(KEY, "GET", b"/w/f", "1800000100", &sig, NOW), Ok(()));
        // The last second of its life still counts.
        assert_eq!(verify(KEY, "GET", b"/w/f", "1800000100", &sig, 1_800_000_100), Ok(()));
        let forever = sign(KEY, "POST", b"/w/f", "0");
        assert_eq!(verify(KEY, "POST", b"/w/f", "0", &forever, u64::MAX), Ok(()));
    }

    #[test]
    fn expiry_is_checked_before_the_signature() {
        let sig = sign(KEY, "GET", b"/w/f", "1700000000");
        let e = verify(KEY, "GET", b"/w/f", "1700000000", &sig, NOW).unwrap_err();
        assert_eq!(e, Refusal::Expired { at: "2023-11-14T22:13:20Z".into() });
        assert!(e.to_string().contains("expired at 2023-11-14T22:13:20Z"), "{e}");
        // Even a garbage signature on an expired URL is reported as expired.
        assert!(matches!(
            verify(KEY, "GET", b"/w/f", "1700000000", "nonsense", NOW),
            Err(Refusal::Expired { .. })
        ));
    }

    #[test]
    fn tampering_is_refused() {
        let sig = sign(KEY, "GET", b"/w/f", "1800000100");
        let refused = |method: &str, path: &[u8], expires: &str, sig: &str| {
            verify(KEY, method, path, expires, sig, NOW).unwrap_err()
        };
        assert_eq!(refused("GET", b"/w/g", "1800000100", &sig), Refusal::Mismatch, "other path");
        assert_eq!(refused("POST", b"/w/f", "1800000100", &sig), Refusal::Mismatch, "other method");
        assert_eq!(refused("GET", b"/w/f", "1800000200", &sig), Refusal::Mismatch, "longer life");
        assert_eq!(refused("GET", b"/w/f", "0", &sig), Refusal::Mismatch, "made eternal");
        let other_key = sign(b"another-key-entirely", "GET", b"/w/f", "1800000100");
        assert_eq!(refused("GET", b"/w/f", "1800000100", &other_key), Refusal::Mismatch);
        // Every single character of the signature changed is a mismatch (or bad encoding).
        let body = &sig[SCHEME.len()..];
        for i in 0..body.len() {
            let mut chars: Vec<char> = body.chars().collect();
            chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let tampered = format!("{SCHEME}{}", chars.into_iter().collect::<String>());
            let e = refused("GET", b"/w/f", "1800000100", &tampered);
            assert!(matches!(e, Refusal::Mismatch | Refusal::Encoding), "position {i}: {e:?}");
        }
        // Shorter (a whole number of bytes, so it decodes): a mismatch, not a prefix match.
        assert_eq!(refused("GET", b"/w/f", "1800000100", &sig[..sig.len() - 3]), Refusal::Mismatch);
    }

    #[test]
    fn scheme_and_encoding() {
        let sig = sign(KEY, "GET", b"/w/f", "0");
        let v2 = sig.replacen("v1_", "v2_", 1);
        assert_eq!(verify(KEY, "GET", b"/w/f", "0", &v2, NOW), Err(Refusal::Scheme));
        assert_eq!(verify(KEY, "GET", b"/w/f", "0", &sig[3..], NOW), Err(Refusal::Scheme));
        for bad in ["v1_not*base64", "v1_a", "v1_AAAA===="] {
            assert_eq!(verify(KEY, "GET", b"/w/f", "0", bad, NOW), Err(Refusal::Encoding), "{bad}");
        }
    }

    /// The MAC comparison goes through the one constant-time function, once per verification
    /// that gets that far, so no check here can stop at the first differing byte.
    #[test]
    fn the_mac_is_compared_by_the_constant_time_function() {
        let sig = sign(KEY, "GET", b"/w/f", "0");
        let before = crate::secret::calls::get();
        let _ = verify(KEY, "GET", b"/w/f", "0", &sig, NOW);
        assert_eq!(crate::secret::calls::get(), before + 1, "a valid signature");
        let mut wrong = sig.clone().into_bytes();
        let last = wrong.len() - 2;
        wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
        let _ = verify(KEY, "GET", b"/w/f", "0", std::str::from_utf8(&wrong).unwrap(), NOW);
        assert_eq!(crate::secret::calls::get(), before + 2, "a wrong one");
        let _ = verify(KEY, "GET", b"/w/f", "0", "v1_AAAA", NOW);
        assert_eq!(crate::secret::calls::get(), before + 3, "a short one too: no length shortcut");
    }
}
