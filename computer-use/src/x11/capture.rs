//! Screen capture: MIT-SHM `GetImage` into a shared segment (no pixel copy through the socket),
//! falling back to a plain `GetImage` when SHM is missing or refused (a remote or sandboxed
//! server). Pixels come back as packed RGB.

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder};

use super::conn::Conn;
use super::error::XError;
use super::shm::Shm;

/// Packed 8-bit RGB, rows top to bottom, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn black(width: u32, height: u32) -> RgbImage {
        RgbImage { width, height, data: vec![0; width as usize * height as usize * 3] }
    }
}

/// A rectangle in root coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn intersect(&self, o: &Rect) -> Option<Rect> {
        let x0 = self.x.max(o.x) as i64;
        let y0 = self.y.max(o.y) as i64;
        let x1 = (self.x as i64 + self.width as i64).min(o.x as i64 + o.width as i64);
        let y1 = (self.y as i64 + self.height as i64).min(o.y as i64 + o.height as i64);
        (x1 > x0 && y1 > y0).then(|| Rect {
            x: x0 as i32,
            y: y0 as i32,
            width: (x1 - x0) as u32,
            height: (y1 - y0) as u32,
        })
    }
}

/// How the root window's pixels are laid out.
#[derive(Debug, Clone, Copy)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub scanline_pad: u8,
    pub lsb_first: bool,
    pub red_mask: u32,
    pub green_mask: u32,
    pub blue_mask: u32,
}

impl PixelFormat {
    fn of(conn: &Conn) -> Result<PixelFormat, XError> {
        let setup = conn.c.setup();
        let fmt = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == conn.root_depth)
            .ok_or_else(|| XError::new("no pixmap format for the root depth"))?;
        let visual = setup
            .roots
            .iter()
            .flat_map(|s| s.allowed_depths.iter())
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == conn.root_visual)
            .ok_or_else(|| XError::new("root visual not found"))?;
        Ok(PixelFormat {
            bits_per_pixel: fmt.bits_per_pixel,
            scanline_pad: fmt.scanline_pad,
            lsb_first: setup.image_byte_order == ImageOrder::LSB_FIRST,
            red_mask: visual.red_mask,
            green_mask: visual.green_mask,
            blue_mask: visual.blue_mask,
        })
    }

    fn stride(&self, width: u32) -> usize {
        let pad = self.scanline_pad.max(8) as usize;
        (width as usize * self.bits_per_pixel as usize).div_ceil(pad) * pad / 8
    }
}

fn channel(p: u32, mask: u32) -> u8 {
    if mask == 0 {
        return 0;
    }
    let shift = mask.trailing_zeros();
    let bits = (mask >> shift).count_ones();
    let v = (p & mask) >> shift;
    if bits >= 8 { (v >> (bits - 8)) as u8 } else { ((v * 255) / ((1 << bits) - 1)) as u8 }
}

/// Converts a ZPixmap of `width`×`height` into packed RGB (24/32 bpp true colour, and 16 bpp).
pub fn to_rgb(raw: &[u8], width: u32, height: u32, f: &PixelFormat) -> Result<Vec<u8>, XError> {
    let stride = f.stride(width);
    let need = stride * height as usize;
    if raw.len() < need {
        return Err(XError::new(format!("short image: {} bytes, expected {need}", raw.len())));
    }
    let fast = f.bits_per_pixel == 32
        && f.lsb_first
        && (f.red_mask, f.green_mask, f.blue_mask) == (0xff0000, 0xff00, 0xff);
    if fast {
        // The common case (Xvfb, any 24-bit TrueColor server): BGRX → RGB, written into a
        // sized buffer (no per-pixel push and capacity check).
        let row_out = width as usize * 3;
        let mut out = vec![0u8; row_out * height as usize];
        for (src, dst) in raw[..need].chunks_exact(stride).zip(out.chunks_exact_mut(row_out)) {
            for (s, d) in src[..width as usize * 4].chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
                d[0] = s[2];
                d[1] = s[1];
                d[2] = s[0];
            }
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for row in raw[..need].chunks_exact(stride) {
        match f.bits_per_pixel {
            32 | 24 | 16 => {
                let bpp = f.bits_per_pixel as usize / 8;
                for px in row[..width as usize * bpp].chunks_exact(bpp) {
                    let mut b = [0u8; 4];
                    b[..bpp].copy_from_slice(px);
                    let p = if f.lsb_first {
                        u32::from_le_bytes(b)
                    } else {
                        u32::from_be_bytes(b) >> (8 * (4 - bpp))
                    };
                    out.extend_from_slice(&[
                        channel(p, f.red_mask),
                        channel(p, f.green_mask),
                        channel(p, f.blue_mask),
                    ]);
                }
            }
            other => return Err(XError::new(format!("unsupported pixel size: {other} bits"))),
        }
    }
    Ok(out)
}

impl Conn {
    /// The root window's current size (after any RandR resize).
    pub fn root_rect(&self) -> Result<Rect, XError> {
        let g = self.c.get_geometry(self.root)?.reply()?;
        Ok(Rect { x: 0, y: 0, width: g.width as u32, height: g.height as u32 })
    }

    /// The active monitors (RandR 1.5), else the whole root window as one screen.
    pub fn screens(&self) -> Result<Vec<Rect>, XError> {
        let randr = self.c.extension_information(x11rb::protocol::randr::X11_EXTENSION_NAME)?.is_some()
            && self
                .c
                .randr_query_version(1, 5)?
                .reply()
                .is_ok_and(|v| (v.major_version, v.minor_version) >= (1, 5));
        if randr && let Ok(r) = self.c.randr_get_monitors(self.root, true)?.reply() {
            let mut mons = r.monitors;
            // Primary first, as screen 0.
            mons.sort_by_key(|m| !m.primary);
            let rects: Vec<Rect> = mons
                .iter()
                .filter(|m| m.width > 0 && m.height > 0)
                .map(|m| Rect {
                    x: m.x as i32,
                    y: m.y as i32,
                    width: m.width as u32,
                    height: m.height as u32,
                })
                .collect();
            if !rects.is_empty() {
                return Ok(rects);
            }
        }
        Ok(vec![self.root_rect()?])
    }

    /// Captures `area` (root coordinates); parts outside the root window are black.
    pub fn capture(&mut self, area: Rect) -> Result<RgbImage, XError> {
        let root = self.root_rect()?;
        let Some(inside) = area.intersect(&root) else {
            return Ok(RgbImage::black(area.width, area.height));
        };
        let fmt = PixelFormat::of(self)?;
        let rgb = self.grab(inside, &fmt)?;
        if inside == area {
            return Ok(RgbImage { width: area.width, height: area.height, data: rgb });
        }
        let mut img = RgbImage::black(area.width, area.height);
        let (dx, dy) = ((inside.x - area.x) as usize, (inside.y - area.y) as usize);
        let src_stride = inside.width as usize * 3;
        for (row, src) in rgb.chunks_exact(src_stride).enumerate() {
            let off = ((dy + row) * area.width as usize + dx) * 3;
            img.data[off..off + src_stride].copy_from_slice(src);
        }
        Ok(img)
    }

    fn grab(&mut self, r: Rect, fmt: &PixelFormat) -> Result<Vec<u8>, XError> {
        let need = fmt.stride(r.width) * r.height as usize;
        if !self.shm_broken {
            match self.grab_shm(r, fmt, need) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_lost() => return Err(e),
                Err(e) => {
                    tracing::info!(error = %e, "MIT-SHM capture unavailable, using GetImage");
                    self.shm_broken = true;
                    if let Some(s) = self.shm.take() {
                        s.release(&self.c);
                    }
                }
            }
        }
        let reply = self
            .c
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                r.x as i16,
                r.y as i16,
                r.width as u16,
                r.height as u16,
                !0,
            )?
            .reply()?;
        to_rgb(&reply.data, r.width, r.height, fmt)
    }

    fn grab_shm(&mut self, r: Rect, fmt: &PixelFormat, need: usize) -> Result<Vec<u8>, XError> {
        if self.shm.as_ref().is_some_and(|s| s.size < need) {
            let old = self.shm.take().expect("checked");
            old.release(&self.c);
        }
        if self.shm.is_none() {
            self.shm = Some(Shm::create(&self.c, need)?);
        }
        let shm = self.shm.as_ref().expect("created");
        self.c
            .shm_get_image(
                self.root,
                r.x as i16,
                r.y as i16,
                r.width as u16,
                r.height as u16,
                !0,
                ImageFormat::Z_PIXMAP.into(),
                shm.seg,
                0,
            )?
            .reply()?;
        // SAFETY: the server wrote `need` bytes at offset 0 and has replied; the segment is at
        // least `need` bytes long and only used under the connection lock.
        let raw = unsafe { std::slice::from_raw_parts(shm.addr, need) };
        to_rgb(raw, r.width, r.height, fmt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bgrx() -> PixelFormat {
        PixelFormat {
            bits_per_pixel: 32,
            scanline_pad: 32,
            lsb_first: true,
            red_mask: 0xff0000,
            green_mask: 0xff00,
            blue_mask: 0xff,
        }
    }

    #[test]
    fn bgrx_becomes_rgb() {
        let raw = [1, 2, 3, 0, 4, 5, 6, 0];
        assert_eq!(to_rgb(&raw, 2, 1, &bgrx()).unwrap(), vec![3, 2, 1, 6, 5, 4]);
        assert!(to_rgb(&raw, 3, 1, &bgrx()).is_err());
    }

    #[test]
    fn generic_masks_and_16_bit_pixels() {
        let f = PixelFormat {
            bits_per_pixel: 16,
            scanline_pad: 32,
            lsb_first: true,
            red_mask: 0xf800,
            green_mask: 0x07e0,
            blue_mask: 0x001f,
        };
        // One white pixel, then padding to 32 bits.
        let raw = [0xff, 0xff, 0, 0];
        assert_eq!(to_rgb(&raw, 1, 1, &f).unwrap(), vec![255, 255, 255]);
        let f = PixelFormat { red_mask: 0xff, blue_mask: 0xff0000, ..bgrx() };
        assert_eq!(to_rgb(&[1, 2, 3, 0], 1, 1, &f).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn rects_intersect() {
        let screen = Rect { x: 0, y: 0, width: 100, height: 50 };
        assert_eq!(
            Rect { x: -10, y: 40, width: 20, height: 20 }.intersect(&screen),
            Some(Rect { x: 0, y: 40, width: 10, height: 10 })
        );
        assert_eq!(Rect { x: 100, y: 0, width: 5, height: 5 }.intersect(&screen), None);
    }
}
