//! The bounded buffer of recent output that a connecting client is shown first.

use std::collections::VecDeque;

/// Keeps the last `cap` bytes written to it. Memory grows only with actual output, so an idle
/// terminal with a prompt costs a few hundred bytes, not `cap`.
#[derive(Debug)]
pub struct Ring {
    buf: VecDeque<u8>,
    cap: usize,
}

impl Ring {
    pub fn new(cap: usize) -> Self {
        Ring { buf: VecDeque::new(), cap }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        if data.len() >= self.cap {
            self.buf.clear();
            self.buf.extend(&data[data.len() - self.cap..]);
            return;
        }
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    pub fn contents(&self) -> Vec<u8> {
        let (a, b) = self.buf.as_slices();
        [a, b].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn keeps_the_most_recent_bytes() {
        let mut r = Ring::new(5);
        r.push(b"abc");
        assert_eq!(r.contents(), b"abc");
        r.push(b"def");
        assert_eq!(r.contents(), b"bcdef");
        r.push(b"0123456789");
        assert_eq!(r.contents(), b"56789");
        r.push(b"x");
        assert_eq!(r.contents(), b"6789x");
        let mut z = Ring::new(0);
        z.push(b"abc");
        assert!(z.contents().is_empty());
    }
}
