//! The one way the daemon compares a secret with what a client sent: the API token, the SSH
//! password, a signed URL's MAC.
//!
//! Both sides are hashed with SHA-256 first and the digests compared in constant time. The
//! comparison then takes the same time wherever the two differ, and however long the guess is:
//! comparing the raw bytes would tell an attacker the secret's length by the early exit on a
//! length mismatch.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `given` equals `expected`, in time independent of where they differ and of their
/// lengths (beyond hashing `given`, whose length the sender knows anyway).
pub fn matches(expected: &[u8], given: &[u8]) -> bool {
    #[cfg(test)]
    calls::count();
    let expected = Sha256::digest(expected);
    let given = Sha256::digest(given);
    expected.as_slice().ct_eq(given.as_slice()).into()
}

/// A per-thread count of [`matches`] calls, so tests can prove that a check went through it.
#[cfg(test)]
pub mod calls {
    use std::cell::Cell;

    thread_local! {
        static CALLS: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn count() {
        CALLS.with(|c| c.set(c.get() + 1));
    }

    /// Calls made on this thread so far.
    pub fn get() -> usize {
        CALLS.with(Cell::get)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_unequal() {
        assert!(matches(b"sandbox-ssh", b"sandbox-ssh"));
        assert!(!matches(b"sandbox-ssh", b"sandbox-sshx"));
        assert!(!matches(b"sandbox-ssh", b"sandbox-ss"));
        assert!(!matches(b"sandbox-ssh", b"Sandbox-ssh"));
        assert!(!matches(b"sandbox-ssh", b""));
        assert!(matches(b"", b""));
    }

    /// Property: for a secret of every length up to 64, a guess that differs in any one byte
    /// position (first, middle, last, each bit), or is any prefix or extension of it, is refused,
    /// and only the secret itself is accepted.
    #[test]
    fn every_differing_position_and_length_is_refused() {
        for len in 0..=64usize {
            let secret: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert!(matches(&secret, &secret.clone()), "len {len}");
            for pos in 0..len {
                for bit in 0..8 {
                    let mut guess = secret.clone();
                    guess[pos] ^= 1 << bit;
                    assert!(!matches(&secret, &guess), "len {len} pos {pos} bit {bit}");
                }
            }
            for cut in 0..len {
                assert!(!matches(&secret, &secret[..cut]), "len {len} prefix {cut}");
            }
            for extra in 1..=3 {
                let mut longer = secret.clone();
                longer.extend(std::iter::repeat_n(0u8, extra));
                assert!(!matches(&secret, &longer), "len {len} extended by {extra}");
            }
        }
    }

    #[test]
    fn the_call_counter_counts() {
        let before = calls::get();
        matches(b"a", b"b");
        matches(b"a", b"a");
        assert_eq!(calls::get(), before + 2);
    }
}
