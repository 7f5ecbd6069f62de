//! Pixel work for screenshots: the cursor crosshair, nearest-neighbour scaling, PNG and JPEG
//! encoding (JPEG by our own encoder, see `jpeg`) and standard base64.

use crate::x11::capture::RgbImage;

fn put(img: &mut RgbImage, x: i64, y: i64, rgb: [u8; 3]) {
    if x < 0 || y < 0 || x >= img.width as i64 || y >= img.height as i64 {
        return;
    }
    let i = (y as usize * img.width as usize + x as usize) * 3;
    img.data[i..i + 3].copy_from_slice(&rgb);
}

/// The cursor overlay (spec computer-use.md §3): white lines 3 px thick reaching ±20 px from
/// the pointer, a 1 px black line along the middle of each, and a red 5×5 square at the centre.
/// Clipped to the image; does nothing when the pointer is outside.
pub fn draw_cursor(img: &mut RgbImage, cx: i64, cy: i64) {
    if cx < 0 || cy < 0 || cx >= img.width as i64 || cy >= img.height as i64 {
        return;
    }
    const WHITE: [u8; 3] = [255, 255, 255];
    const BLACK: [u8; 3] = [0, 0, 0];
    const RED: [u8; 3] = [255, 0, 0];
    for d in -20..=20 {
        for t in -1..=1 {
            put(img, cx + d, cy + t, WHITE);
            put(img, cx + t, cy + d, WHITE);
        }
    }
    for d in -20..=20 {
        put(img, cx + d, cy, BLACK);
        put(img, cx, cy + d, BLACK);
    }
    for dy in -2..=2 {
        for dx in -2..=2 {
            put(img, cx + dx, cy + dy, RED);
        }
    }
}

/// `floor(n * scale)`, at least 1.
pub fn scaled_len(n: u32, scale: f64) -> u32 {
    ((n as f64 * scale).floor() as u32).max(1)
}

/// Nearest-neighbour scaling: destination pixel `d` takes source pixel `floor(d / scale)`.
pub fn scale(img: &RgbImage, scale: f64) -> RgbImage {
    if scale >= 1.0 {
        return img.clone();
    }
    let (w, h) = (scaled_len(img.width, scale), scaled_len(img.height, scale));
    let src_x: Vec<usize> =
        (0..w).map(|x| ((x as f64 / scale).floor() as usize).min(img.width as usize - 1)).collect();
    let mut data = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        let sy = ((y as f64 / scale).floor() as usize).min(img.height as usize - 1);
        let row = &img.data[sy * img.width as usize * 3..(sy + 1) * img.width as usize * 3];
        for &sx in &src_x {
            data.extend_from_slice(&row[sx * 3..sx * 3 + 3]);
        }
    }
    RgbImage { width: w, height: h, data }
}

pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(img.data.len() / 4);
    let mut enc = png::Encoder::new(&mut out, img.width, img.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header().map_err(|e| format!("png: {e}"))?;
    w.write_image_data(&img.data).map_err(|e| format!("png: {e}"))?;
    w.finish().map_err(|e| format!("png: {e}"))?;
    Ok(out)
}

pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    super::jpeg::encode(&img.data, img.width, img.height, quality)
}

/// Standard base64 with padding, as the clients decode it.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * img.width + x) * 3) as usize;
        [img.data[i], img.data[i + 1], img.data[i + 2]]
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::black(w, h);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                img.data[i] = x as u8;
                img.data[i + 1] = y as u8;
            }
        }
        img
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn scaling_is_nearest_neighbour_with_floor_sizes() {
        let img = gradient(10, 5);
        let s = scale(&img, 0.5);
        assert_eq!((s.width, s.height), (5, 2));
        assert_eq!(px(&s, 1, 1), [2, 2, 0]);
        assert_eq!(px(&s, 4, 0), [8, 0, 0]);
        let s = scale(&img, 0.3);
        assert_eq!((s.width, s.height), (3, 1));
        assert_eq!(px(&s, 2, 0), [6, 0, 0]);
        let tiny = scale(&gradient(3, 3), 0.1);
        assert_eq!((tiny.width, tiny.height), (1, 1));
        assert_eq!(scale(&img, 1.0), img);
    }

    #[test]
    fn cursor_crosshair_shape() {
        let mut img = RgbImage::black(100, 100);
        draw_cursor(&mut img, 50, 50);
        assert_eq!(px(&img, 50, 50), [255, 0, 0]);
        assert_eq!(px(&img, 52, 52), [255, 0, 0]);
        assert_eq!(px(&img, 53, 50), [0, 0, 0], "black centre line");
        assert_eq!(px(&img, 53, 49), [255, 255, 255]);
        assert_eq!(px(&img, 70, 51), [255, 255, 255]);
        assert_eq!(px(&img, 70, 50), [0, 0, 0]);
        assert_eq!(px(&img, 71, 51), [0, 0, 0], "beyond 20 px nothing is drawn");
        assert_eq!(px(&img, 50, 30), [0, 0, 0]);
        assert_eq!(px(&img, 49, 30), [255, 255, 255]);
        assert_eq!(px(&img, 48, 30), [0, 0, 0]);
        assert_eq!(px(&img, 60, 60), [0, 0, 0]);
        // Clipped at the border, and nothing when the pointer is outside.
        let mut img = RgbImage::black(10, 10);
        draw_cursor(&mut img, 0, 0);
        assert_eq!(px(&img, 0, 0), [255, 0, 0]);
        let mut img = RgbImage::black(10, 10);
        draw_cursor(&mut img, 10, 5);
        assert!(img.data.iter().all(|&b| b == 0));
    }

    #[test]
    fn encoders_produce_their_signatures() {
        let img = gradient(16, 8);
        let png = encode_png(&img).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let jpg = encode_jpeg(&img, 80).unwrap();
        assert_eq!(&jpg[..2], &[0xff, 0xd8]);
    }
}
