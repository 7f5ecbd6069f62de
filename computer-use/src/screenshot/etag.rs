//! Screenshot `ETag`s and the `If-None-Match` question (an extension: not in Daytona's daemon).
//!
//! A tag names one frame: the connection it was taken on (a restarted X server never matches),
//! what the screen looked like (the XDamage generation, or a hash of the raw pixels when the
//! server has no XDamage) and everything else the answer depends on: the route's parameters
//! (region, cursor overlay, format, quality, scale), the area of the full-screen routes (screen 0
//! moves when the monitor layout changes) and, when the pointer is drawn, its position. So a
//! tag of another region or format never matches, and a pointer move is a change.

use std::fmt::Debug;
use std::hash::Hasher;

/// What the screen looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The XDamage generation.
    Generation(u64),
    /// A hash of the captured pixels (no XDamage).
    Frame(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub instance: u64,
    pub screen: Screen,
    /// A hash of the request's parameters and the drawn pointer.
    pub params: u64,
}

impl Tag {
    /// `params`: the request's parameters; their debug form is hashed, so a new parameter
    /// cannot be forgotten here.
    pub fn new(instance: u64, screen: Screen, params: &dyn Debug, pointer: Option<(i32, i32)>) -> Tag {
        Tag { instance, screen, params: params_hash(params, pointer) }
    }

    /// The quoted entity tag, as the `ETag` header carries it.
    pub fn render(&self) -> String {
        let (kind, n) = match self.screen {
            Screen::Generation(g) => ('g', g),
            Screen::Frame(h) => ('f', h),
        };
        format!("\"{:016x}-{kind}{n:x}-{:016x}\"", self.instance, self.params)
    }

    /// The inverse of [`Tag::render`] (quotes optional, a weak `W/` prefix allowed).
    pub fn parse(s: &str) -> Option<Tag> {
        let s = s.trim();
        let s = s.strip_prefix("W/").unwrap_or(s);
        let s = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s);
        let mut parts = s.split('-');
        let (instance, screen, params) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || instance.len() != 16 || params.len() != 16 {
            return None;
        }
        let hex = |v: &str| {
            (!v.is_empty() && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(v, 16).ok())
                .flatten()
        };
        let screen = match screen.split_at_checked(1)? {
            ("g", n) => Screen::Generation(hex(n)?),
            ("f", n) => Screen::Frame(hex(n)?),
            _ => return None,
        };
        Some(Tag { instance: hex(instance)?, screen, params: hex(params)? })
    }
}

/// FNV-1a: stable across runs and processes, unlike std's keyed hasher, and plenty for telling
/// parameter sets apart (the instance already differs between processes).
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn fnv() -> Fnv {
    Fnv(0xcbf2_9ce4_8422_2325)
}

fn params_hash(params: &dyn Debug, pointer: Option<(i32, i32)>) -> u64 {
    let mut h = fnv();
    h.write(format!("{params:?}|{pointer:?}").as_bytes());
    h.finish()
}

/// A hash of a raw capture, for servers without XDamage. A fast 64-bit multiply-mix over 8-byte
/// words: it only has to notice that pixels differ, not resist an adversary.
pub fn frame_hash(pixels: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ pixels.len() as u64;
    let mut words = pixels.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The tags a client says it already has: the `If-None-Match` header (a comma-separated list
/// of quoted tags, possibly weak, or `*`) and the `ifNoneMatch` query parameter, for clients
/// that cannot set headers (quotes optional there).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Known {
    any: bool,
    tags: Vec<Tag>,
}

impl Known {
    pub fn parse<'a>(headers: impl IntoIterator<Item = &'a str>, query: Option<&'a str>) -> Known {
        let mut known = Known::default();
        for list in headers.into_iter().chain(query) {
            for item in list.split(',') {
                let item = item.trim();
                if item == "*" {
                    known.any = true;
                } else if let Some(t) = Tag::parse(item) {
                    known.tags.push(t);
                }
                // Anything else (not one of our tags) can never match: ignored.
            }
        }
        known
    }

    pub fn is_empty(&self) -> bool {
        !self.any && self.tags.is_empty()
    }

    /// Weak comparison, as `If-None-Match` asks for; `*` matches any current frame.
    pub fn matches(&self, tag: &Tag) -> bool {
        self.any || self.tags.contains(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screenshot::query::{Compression, Format, Region};

    /// What the service hashes: the request's fields.
    type Req = (Option<Region>, bool, Option<Compression>);

    fn req(region: Option<Region>, cursor: bool, compression: Option<Compression>) -> Req {
        (region, cursor, compression)
    }

    #[test]
    fn tags_render_and_parse_back() {
        let r = req(None, false, None);
        for screen in [Screen::Generation(1), Screen::Generation(u64::MAX), Screen::Frame(0xabc)] {
            let t = Tag::new(0x0123_4567_89ab_cdef, screen, &r, None);
            let s = t.render();
            assert!(s.starts_with('"') && s.ends_with('"'), "{s}");
            assert_eq!(Tag::parse(&s), Some(t));
            assert_eq!(Tag::parse(&format!("W/{s}")), Some(t));
            assert_eq!(Tag::parse(s.trim_matches('"')), Some(t), "unquoted, as a query parameter");
        }
        for bad in [
            "",
            "\"\"",
            "*",
            "\"abc\"",
            "\"0123456789abcdef-g-0123456789abcdef\"",
            "\"0123456789abcdef-x1-0123456789abcdef\"",
            "\"0123456789abcdef-g1-0123\"",
            "\"0123456789abcdef-g1-0123456789abcdef-1\"",
            "\"0123456789abcdeg-g1-0123456789abcdef\"",
            "\"0123456789abcdef-g+1-0123456789abcdef\"",
        ] {
            assert_eq!(Tag::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn parameters_and_pointer_are_part_of_the_tag() {
        let jpeg = Compression { format: Format::Jpeg, quality: 85, scale: 1.0 };
        let region = Region { x: 0, y: 0, width: 10, height: 10 };
        let variants = [
            req(None, false, None),
            req(None, true, None),
            req(Some(region), false, None),
            req(Some(Region { x: 1, ..region }), false, None),
            req(None, false, Some(jpeg)),
            req(None, false, Some(Compression { format: Format::Png, ..jpeg })),
            req(None, false, Some(Compression { quality: 84, ..jpeg })),
            req(None, false, Some(Compression { scale: 0.5, ..jpeg })),
            req(Some(region), false, Some(jpeg)),
        ];
        let tags: Vec<String> =
            variants.iter().map(|r| Tag::new(7, Screen::Generation(3), r, None).render()).collect();
        for (i, a) in tags.iter().enumerate() {
            for b in &tags[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let cursor = req(None, true, None);
        assert_ne!(
            Tag::new(7, Screen::Generation(3), &cursor, Some((1, 2))),
            Tag::new(7, Screen::Generation(3), &cursor, Some((1, 3)))
        );
        // Same everything: the same tag (stable, so a client's tag survives between requests).
        assert_eq!(
            Tag::new(7, Screen::Generation(3), &cursor, Some((1, 2))).render(),
            Tag::new(7, Screen::Generation(3), &cursor, Some((1, 2))).render()
        );
        assert_ne!(
            Tag::new(7, Screen::Generation(3), &cursor, None),
            Tag::new(8, Screen::Generation(3), &cursor, None)
        );
        assert_ne!(
            Tag::new(7, Screen::Generation(3), &cursor, None),
            Tag::new(7, Screen::Generation(4), &cursor, None)
        );
    }

    #[test]
    fn if_none_match_lists_and_the_query_alternative() {
        let r = req(None, false, None);
        let a = Tag::new(1, Screen::Generation(1), &r, None);
        let b = Tag::new(1, Screen::Generation(2), &r, None);
        let c = Tag::new(1, Screen::Generation(3), &r, None);
        let header = format!("{}, W/{} , \"unrelated\"", a.render(), b.render());
        let k = Known::parse([header.as_str()], None);
        assert!(k.matches(&a) && k.matches(&b) && !k.matches(&c));
        let q = c.render();
        let k = Known::parse([], Some(q.trim_matches('"')));
        assert!(k.matches(&c) && !k.matches(&a));
        assert!(Known::parse(["*"], None).matches(&c));
        let k = Known::parse(["garbage", ""], Some(""));
        assert!(k.is_empty() && !k.matches(&a));
    }

    #[test]
    fn frame_hashes_notice_one_changed_byte() {
        let mut px = vec![7u8; 1921 * 3];
        let h = frame_hash(&px);
        assert_eq!(h, frame_hash(&px));
        for i in [0, 9, px.len() - 1] {
            px[i] ^= 1;
            assert_ne!(frame_hash(&px), h, "byte {i}");
            px[i] ^= 1;
        }
        assert_ne!(frame_hash(&px[..px.len() - 1]), h);
    }
}
