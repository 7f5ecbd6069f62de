//! A baseline JPEG encoder made for screenshots: JFIF, the Annex K quantisation tables scaled
//! by quality the IJG way, the standard Huffman tables, 4:2:0 chroma below quality 90 and 4:4:4
//! from 90 up (what the general-purpose encoder used before did, so sizes and looks stay).
//!
//! Why our own: a screen is mostly flat colour. An 8×8 block whose 64 samples are equal has a
//! DC coefficient only, so its transform, quantisation and zero-run scan reduce to one division
//! and its entropy code to a DC difference and an end-of-block; on a desktop most blocks are
//! like that, and a general encoder transforms every one of them. The rest is kept lean too:
//! colour conversion (and the 2×2 chroma average) in one pass per band of rows into buffers
//! reused across the image, a separable float DCT the compiler vectorises, and a Huffman
//! writer that keeps its bits in a register and stuffs 0xFF bytes four at a time.

/// Zigzag position → natural (row-major) index of the 8×8 block.
const ZIGZAG: [usize; 64] = zigzag();

const fn zigzag() -> [usize; 64] {
    let mut out = [0usize; 64];
    let mut i = 0;
    let mut s = 0;
    while s < 15 {
        // Even anti-diagonals run up (row decreasing), odd ones down.
        let lo = if s > 7 { s - 7 } else { 0 };
        let hi = if s < 7 { s } else { 7 };
        let mut k = 0;
        while k <= hi - lo {
            let row = if s % 2 == 0 { hi - k } else { lo + k };
            out[i] = row * 8 + (s - row);
            i += 1;
            k += 1;
        }
        s += 1;
    }
    out
}

/// Annex K tables (natural order), scaled by quality below.
const LUMA_Q: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17,
    22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78,
    87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// The standard Huffman tables (Annex K.3): code counts per length 1..=16, then the symbols.
struct Spec {
    bits: [u8; 16],
    vals: &'static [u8],
}

const DC_LUMA: Spec = Spec { bits: [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], vals: &DC_VALS };
const DC_CHROMA: Spec = Spec { bits: [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], vals: &DC_VALS };
const DC_VALS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA: Spec = Spec { bits: [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d], vals: &AC_LUMA_VALS };
const AC_CHROMA: Spec =
    Spec { bits: [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77], vals: &AC_CHROMA_VALS };
#[rustfmt::skip]
const AC_LUMA_VALS: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
#[rustfmt::skip]
const AC_CHROMA_VALS: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Code and length per symbol, from a table's canonical description (Annex C).
struct Codes([(u16, u8); 256]);

impl Codes {
    fn of(spec: &Spec) -> Codes {
        let mut out = [(0u16, 0u8); 256];
        let (mut code, mut k) = (0u16, 0usize);
        for (len, &n) in spec.bits.iter().enumerate() {
            for _ in 0..n {
                out[spec.vals[k] as usize] = (code, len as u8 + 1);
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        Codes(out)
    }
}

/// The IJG quality scaling of a base table, in natural order.
fn scaled(base: &[u16; 64], quality: u8) -> [u8; 64] {
    let q = quality.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - q * 2 };
    base.map(|b| ((b as u32 * scale + 50) / 100).clamp(1, 255) as u8)
}

/// `C[u][x] = c(u)/2 · cos((2x+1)uπ/16)`, the orthonormal 8-point DCT-II; the 2-D transform is
/// `C · block · Cᵀ`, which is JPEG's FDCT exactly.
fn dct_matrix() -> [[f32; 8]; 8] {
    let mut c = [[0f32; 8]; 8];
    for (u, row) in c.iter_mut().enumerate() {
        let cu = if u == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 };
        for (x, v) in row.iter_mut().enumerate() {
            let a = (2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0;
            *v = (cu / 2.0 * a.cos()) as f32;
        }
    }
    c
}

/// One component's quantisation: the table as written (natural order) and its reciprocals.
struct Quant {
    table: [u8; 64],
    recip: [f32; 64],
}

impl Quant {
    fn new(table: [u8; 64]) -> Quant {
        Quant { table, recip: table.map(|q| 1.0 / q as f32) }
    }
}

/// Rounds half away from zero, as the IJG encoder does.
fn round(v: f32) -> i32 {
    (v + 0.5f32.copysign(v)) as i32
}

struct Transform {
    c: [[f32; 8]; 8],
    /// `Cᵀ` rows: `ct[x][u] = C[u][x]`.
    ct: [[f32; 8]; 8],
}

impl Transform {
    fn new() -> Transform {
        let c = dct_matrix();
        let mut ct = [[0f32; 8]; 8];
        for u in 0..8 {
            for x in 0..8 {
                ct[x][u] = c[u][x];
            }
        }
        Transform { c, ct }
    }

    /// The quantised coefficients of the 8×8 block at (`x`, `y`) of `plane`, in zigzag order.
    /// A flat block (the common case on a screen) skips the transform: its only coefficient is
    /// DC = 8·(sample − 128).
    fn block(&self, plane: &[u8], stride: usize, x: usize, y: usize, q: &Quant, out: &mut [i32; 64]) {
        let rows: [&[u8]; 8] = std::array::from_fn(|r| &plane[(y + r) * stride + x..][..8]);
        let word = |r: &[u8]| u64::from_le_bytes(r.try_into().expect("8 bytes"));
        let first = word(rows[0]);
        if first == u64::from(rows[0][0]) * 0x0101_0101_0101_0101 && rows.iter().all(|r| word(r) == first) {
            *out = [0; 64];
            out[0] = round(8.0 * (rows[0][0] as f32 - 128.0) * q.recip[0]);
            return;
        }
        // Rows first: t[r][u] = Σx s[r][x]·C[u][x]; then columns: o[v][u] = Σr C[v][r]·t[r][u].
        let mut t = [[0f32; 8]; 8];
        for (tr, row) in t.iter_mut().zip(rows) {
            for (x, &s) in row.iter().enumerate() {
                let s = s as f32 - 128.0;
                for (acc, c) in tr.iter_mut().zip(self.ct[x]) {
                    *acc += s * c;
                }
            }
        }
        let mut o = [[0f32; 8]; 8];
        for (ov, cv) in o.iter_mut().zip(&self.c) {
            for (tr, &c) in t.iter().zip(cv) {
                for (acc, v) in ov.iter_mut().zip(tr) {
                    *acc += c * v;
                }
            }
        }
        let flat = o.as_flattened();
        for (dst, &k) in out.iter_mut().zip(&ZIGZAG) {
            *dst = round(flat[k] * q.recip[k]);
        }
    }
}

/// The entropy-coded segment: bits gathered in a register, written out with 0xFF stuffing.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    /// Appends the low `len` bits of `code` (`len` ≤ 32; at most 27 are ever written at once).
    #[inline]
    fn put(&mut self, code: u32, len: u32) {
        self.acc = (self.acc << len) | (code as u64 & ((1u64 << len) - 1));
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            let w = (self.acc >> self.n) as u32;
            // No 0xFF byte among the four (a zero byte in !w): copy them at once.
            let inv = !w;
            if inv.wrapping_sub(0x0101_0101) & !inv & 0x8080_8080 == 0 {
                self.out.extend_from_slice(&w.to_be_bytes());
            } else {
                for b in w.to_be_bytes() {
                    self.out.push(b);
                    if b == 0xFF {
                        self.out.push(0);
                    }
                }
            }
        }
    }

    /// Pads the last byte with 1-bits (F.1.2.3) and writes what is left.
    fn finish(mut self) -> Vec<u8> {
        let pad = (8 - self.n % 8) % 8;
        self.put((1 << pad) - 1, pad);
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
        self.out
    }
}

/// A component's Huffman tables and DC predictor.
struct Coder<'a> {
    dc: &'a Codes,
    ac: &'a Codes,
    pred: i32,
}

/// The magnitude category of a coefficient and its extra bits.
#[inline]
fn category(v: i32) -> (u32, u32) {
    let size = 32 - v.unsigned_abs().leading_zeros();
    let bits = if v < 0 { v - 1 } else { v } as u32 & ((1u32 << size) - 1);
    (size, bits)
}

impl Coder<'_> {
    #[inline]
    fn block(&mut self, w: &mut Bits, zz: &[i32; 64]) {
        let (size, extra) = category(zz[0] - self.pred);
        self.pred = zz[0];
        let (code, len) = self.dc.0[size as usize];
        w.put(code as u32, len as u32);
        w.put(extra, size);
        // One bit per non-zero AC coefficient: runs of zeros are the gaps between set bits.
        let mut mask = 0u64;
        for (j, eight) in zz.chunks_exact(8).enumerate() {
            let mut m = 0u64;
            for (k, &v) in eight.iter().enumerate() {
                m |= u64::from(v != 0) << k;
            }
            mask |= m << (j * 8);
        }
        mask &= !1;
        let mut last = 0u32;
        while mask != 0 {
            let i = mask.trailing_zeros();
            mask &= mask - 1;
            let mut run = i - last - 1;
            while run >= 16 {
                let (code, len) = self.ac.0[0xF0];
                w.put(code as u32, len as u32);
                run -= 16;
            }
            let (size, extra) = category(zz[i as usize]);
            let (code, len) = self.ac.0[(run << 4 | size) as usize];
            w.put((code as u32) << size | extra, len as u32 + size);
            last = i;
        }
        if last != 63 {
            let (code, len) = self.ac.0[0x00];
            w.put(code as u32, len as u32);
        }
    }
}

/// Fixed-point BT.601 full-range (JFIF) coefficients, scaled by 2^16; each row sums to 0 or
/// 2^16 so grey stays exactly grey.
const YR: i32 = 19595;
const YG: i32 = 38470;
const YB: i32 = 7471;
const CBR: i32 = -11059;
const CBG: i32 = -21709;
const CB_B: i32 = 32768;
const CRR: i32 = 32768;
const CRG: i32 = -27439;
const CRB: i32 = -5329;

#[inline]
fn luma(r: i32, g: i32, b: i32) -> u8 {
    ((YR * r + YG * g + YB * b + 32768) >> 16) as u8
}

/// Cb and Cr of an RGB sum over `1 << shift` pixels (shift 0: one pixel; 2: a 2×2 average).
#[inline]
fn chroma(r: i32, g: i32, b: i32, shift: u32) -> (u8, u8) {
    let s = 16 + shift;
    let bias = (128 << s) + (1 << (s - 1));
    let cb = (CBR * r + CBG * g + CB_B * b + bias) >> s;
    let cr = (CRR * r + CRG * g + CRB * b + bias) >> s;
    (cb.clamp(0, 255) as u8, cr.clamp(0, 255) as u8)
}

/// The luma of a row of packed RGB. Screens repeat one colour along a row: a run of eight
/// pixels equal to the last one converted is filled without arithmetic, and a pixel equal to
/// the one before takes its value.
fn luma_row(src: &[u8], dst: &mut [u8]) {
    let mut last = [src[0], src[1], src[2]];
    let mut value = luma(last[0] as i32, last[1] as i32, last[2] as i32);
    let mut run = [0u8; 24];
    for k in 0..8 {
        run[k * 3..k * 3 + 3].copy_from_slice(&last);
    }
    let mut groups = src.chunks_exact(24);
    let mut outs = dst.chunks_exact_mut(8);
    for (s, d) in (&mut groups).zip(&mut outs) {
        if s == run {
            d.fill(value);
            continue;
        }
        for (o, p) in d.iter_mut().zip(s.chunks_exact(3)) {
            if p != last {
                last = [p[0], p[1], p[2]];
                value = luma(p[0] as i32, p[1] as i32, p[2] as i32);
            }
            *o = value;
        }
        for k in 0..8 {
            run[k * 3..k * 3 + 3].copy_from_slice(&last);
        }
    }
    for (o, p) in outs.into_remainder().iter_mut().zip(groups.remainder().chunks_exact(3)) {
        *o = luma(p[0] as i32, p[1] as i32, p[2] as i32);
    }
}

/// Cb and Cr averaged over 2×2 pixels of two rows (`cb.len()` pairs of columns), with the same
/// shortcuts as [`luma_row`]: runs of sixteen columns repeating the last 2×2 colour are filled.
fn chroma_rows(a: &[u8], b: &[u8], cb: &mut [u8], cr: &mut [u8]) {
    let convert = |p: &[u8], q: &[u8]| {
        let r = p[0] as i32 + p[3] as i32 + q[0] as i32 + q[3] as i32;
        let g = p[1] as i32 + p[4] as i32 + q[1] as i32 + q[4] as i32;
        let bl = p[2] as i32 + p[5] as i32 + q[2] as i32 + q[5] as i32;
        chroma(r, g, bl, 2)
    };
    let n = cb.len();
    if n == 0 {
        return;
    }
    let (a, b) = (&a[..n * 6], &b[..n * 6]);
    let (mut pa, mut pb) = ([0u8; 6], [0u8; 6]);
    pa.copy_from_slice(&a[..6]);
    pb.copy_from_slice(&b[..6]);
    let mut value = convert(&pa, &pb);
    let (mut run_a, mut run_b) = ([0u8; 48], [0u8; 48]);
    let mut i = 0;
    while i + 8 <= n {
        let (sa, sb) = (&a[i * 6..i * 6 + 48], &b[i * 6..i * 6 + 48]);
        if i > 0 && sa == run_a && sb == run_b {
            cb[i..i + 8].fill(value.0);
            cr[i..i + 8].fill(value.1);
            i += 8;
            continue;
        }
        for k in 0..8 {
            let (p, q) = (&sa[k * 6..k * 6 + 6], &sb[k * 6..k * 6 + 6]);
            if p != pa || q != pb {
                pa.copy_from_slice(p);
                pb.copy_from_slice(q);
                value = convert(p, q);
            }
            (cb[i + k], cr[i + k]) = value;
        }
        for k in 0..8 {
            run_a[k * 6..k * 6 + 6].copy_from_slice(&pa);
            run_b[k * 6..k * 6 + 6].copy_from_slice(&pb);
        }
        i += 8;
    }
    for j in i..n {
        (cb[j], cr[j]) = convert(&a[j * 6..j * 6 + 6], &b[j * 6..j * 6 + 6]);
    }
}

/// Encodes packed 8-bit RGB (`width`×`height`, rows without padding) at `quality` (1–100).
pub fn encode(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    let (Ok(w16), Ok(h16)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err("jpeg: image too large".into());
    };
    if width == 0 || height == 0 {
        return Err("jpeg: empty image".into());
    }
    let (w, h) = (width as usize, height as usize);
    if rgb.len() < w * h * 3 {
        return Err(format!("jpeg: {} bytes for a {width}x{height} image", rgb.len()));
    }
    let sub = quality < 90;
    let luma_q = Quant::new(scaled(&LUMA_Q, quality));
    let chroma_q = Quant::new(scaled(&CHROMA_Q, quality));

    let mut out = Vec::with_capacity(w * h / 2 + 1024);
    headers(&mut out, w16, h16, sub, &luma_q, &chroma_q);
    let (dc_l, ac_l, dc_c, ac_c) =
        (Codes::of(&DC_LUMA), Codes::of(&AC_LUMA), Codes::of(&DC_CHROMA), Codes::of(&AC_CHROMA));
    let mut cy = Coder { dc: &dc_l, ac: &ac_l, pred: 0 };
    let mut ccb = Coder { dc: &dc_c, ac: &ac_c, pred: 0 };
    let mut ccr = Coder { dc: &dc_c, ac: &ac_c, pred: 0 };
    let mut bits = Bits { out, acc: 0, n: 0 };
    let dct = Transform::new();
    let mut zz = [0i32; 64];

    // A band is one row of MCUs: 16 lines with 4:2:0, 8 without. Planes are padded to whole
    // MCUs by repeating the last column and row (what decoders expect to crop).
    let mcu = if sub { 16 } else { 8 };
    let pw = w.div_ceil(mcu) * mcu;
    let (cw, ch) = if sub { (pw / 2, mcu / 2) } else { (pw, mcu) };
    let mut yp = vec![0u8; pw * mcu];
    let mut cbp = vec![0u8; cw * ch];
    let mut crp = vec![0u8; cw * ch];
    let row = |y: usize| &rgb[y.min(h - 1) * w * 3..][..w * 3];
    for band in 0..h.div_ceil(mcu) {
        let y0 = band * mcu;
        for line in 0..mcu {
            let src = row(y0 + line);
            let dst = &mut yp[line * pw..][..pw];
            luma_row(src, &mut dst[..w]);
            let edge = dst[w - 1];
            dst[w..].fill(edge);
        }
        if sub {
            for line in 0..ch {
                let (a, b) = (row(y0 + 2 * line), row(y0 + 2 * line + 1));
                let (cb, cr) = (&mut cbp[line * cw..][..cw], &mut crp[line * cw..][..cw]);
                let pairs = w / 2;
                chroma_rows(a, b, &mut cb[..pairs], &mut cr[..pairs]);
                // An odd last column pairs with itself; further padding repeats the edge.
                for i in pairs..cw {
                    let x = (2 * i).min(w - 1) * 3;
                    let (r, g, bl) = (
                        2 * (a[x] as i32 + b[x] as i32),
                        2 * (a[x + 1] as i32 + b[x + 1] as i32),
                        2 * (a[x + 2] as i32 + b[x + 2] as i32),
                    );
                    (cb[i], cr[i]) = chroma(r, g, bl, 2);
                }
            }
        } else {
            for line in 0..ch {
                let src = row(y0 + line);
                let (cb, cr) = (&mut cbp[line * cw..][..cw], &mut crp[line * cw..][..cw]);
                let (mut last, mut value) = (u32::MAX, (0u8, 0u8));
                for ((b1, r1), p) in cb.iter_mut().zip(cr.iter_mut()).zip(src.chunks_exact(3)) {
                    let key = u32::from_le_bytes([p[0], p[1], p[2], 0]);
                    if key != last {
                        last = key;
                        value = chroma(p[0] as i32, p[1] as i32, p[2] as i32, 0);
                    }
                    (*b1, *r1) = value;
                }
                let (eb, er) = (cb[w - 1], cr[w - 1]);
                cb[w..].fill(eb);
                cr[w..].fill(er);
            }
        }
        for m in 0..pw / mcu {
            let x = m * mcu;
            if sub {
                for (bx, by) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
                    dct.block(&yp, pw, x + bx, by, &luma_q, &mut zz);
                    cy.block(&mut bits, &zz);
                }
                dct.block(&cbp, cw, m * 8, 0, &chroma_q, &mut zz);
                ccb.block(&mut bits, &zz);
                dct.block(&crp, cw, m * 8, 0, &chroma_q, &mut zz);
                ccr.block(&mut bits, &zz);
            } else {
                dct.block(&yp, pw, x, 0, &luma_q, &mut zz);
                cy.block(&mut bits, &zz);
                dct.block(&cbp, cw, x, 0, &chroma_q, &mut zz);
                ccb.block(&mut bits, &zz);
                dct.block(&crp, cw, x, 0, &chroma_q, &mut zz);
                ccr.block(&mut bits, &zz);
            }
        }
    }
    let mut out = bits.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(body);
}

/// SOI, JFIF APP0, the two quantisation tables, SOF0, the four Huffman tables and SOS.
fn headers(out: &mut Vec<u8>, w: u16, h: u16, sub: bool, luma: &Quant, chroma: &Quant) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    segment(out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    let mut dqt = Vec::with_capacity(130);
    for (id, q) in [(0u8, luma), (1, chroma)] {
        dqt.push(id);
        dqt.extend(ZIGZAG.iter().map(|&k| q.table[k]));
    }
    segment(out, 0xDB, &dqt);
    let hv = if sub { 0x22 } else { 0x11 };
    let mut sof = vec![8];
    sof.extend_from_slice(&h.to_be_bytes());
    sof.extend_from_slice(&w.to_be_bytes());
    sof.extend_from_slice(&[3, 1, hv, 0, 2, 0x11, 1, 3, 0x11, 1]);
    segment(out, 0xC0, &sof);
    let mut dht = Vec::with_capacity(420);
    for (class_id, spec) in [(0x00u8, &DC_LUMA), (0x10, &AC_LUMA), (0x01, &DC_CHROMA), (0x11, &AC_CHROMA)] {
        dht.push(class_id);
        dht.extend_from_slice(&spec.bits);
        dht.extend_from_slice(spec.vals);
    }
    segment(out, 0xC4, &dht);
    segment(out, 0xDA, &[3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_is_the_standard_scan() {
        assert_eq!(&ZIGZAG[..10], &[0, 1, 8, 16, 9, 2, 3, 10, 17, 24]);
        assert_eq!(&ZIGZAG[56..], &[53, 60, 61, 54, 47, 55, 62, 63]);
        let mut seen = ZIGZAG;
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, &k)| i == k), "a permutation of 0..64");
    }

    #[test]
    fn huffman_tables_are_complete_prefix_codes() {
        for spec in [&DC_LUMA, &DC_CHROMA, &AC_LUMA, &AC_CHROMA] {
            let n: usize = spec.bits.iter().map(|&b| b as usize).sum();
            assert_eq!(n, spec.vals.len());
            let codes = Codes::of(spec);
            // Kraft sum: the codes fill the space except the all-ones code of each length.
            let kraft: f64 = spec.vals.iter().map(|&v| 0.5f64.powi(codes.0[v as usize].1 as i32)).sum();
            assert!(kraft < 1.0 && kraft > 0.99, "{kraft}");
        }
        // Every AC symbol a baseline scan can need: EOB, ZRL, and run/size for sizes 1..=10.
        for vals in [&AC_LUMA_VALS, &AC_CHROMA_VALS] {
            let mut want: Vec<u8> = (0..16u8).flat_map(|r| (1..=10u8).map(move |s| r << 4 | s)).collect();
            want.extend([0x00, 0xF0]);
            want.sort_unstable();
            let mut got = vals.to_vec();
            got.sort_unstable();
            assert_eq!(got, want);
        }
        assert_eq!(Codes::of(&DC_LUMA).0[0], (0b00, 2));
        assert_eq!(Codes::of(&AC_LUMA).0[0x00], (0b1010, 4), "EOB");
        assert_eq!(Codes::of(&AC_LUMA).0[0xF0], (0b111_1111_1001, 11), "ZRL");
        assert_eq!(Codes::of(&AC_CHROMA).0[0x00], (0b00, 2));
    }

    #[test]
    fn categories_and_extra_bits() {
        assert_eq!(category(0), (0, 0));
        assert_eq!(category(1), (1, 1));
        assert_eq!(category(-1), (1, 0));
        assert_eq!(category(5), (3, 5));
        assert_eq!(category(-5), (3, 2));
        assert_eq!(category(-1023), (10, 0));
        assert_eq!(category(2047), (11, 2047));
    }

    #[test]
    fn quality_scales_like_ijg() {
        assert_eq!(scaled(&LUMA_Q, 50), LUMA_Q.map(|v| v as u8));
        assert_eq!(scaled(&LUMA_Q, 100), [1; 64]);
        assert_eq!(scaled(&LUMA_Q, 85)[0], 5);
        assert_eq!(scaled(&CHROMA_Q, 1)[63], 255);
    }

    #[test]
    fn flat_blocks_take_the_short_path_with_the_same_answer() {
        let t = Transform::new();
        let q = Quant::new(scaled(&LUMA_Q, 85));
        let mut flat = [0i32; 64];
        t.block(&[200u8; 64], 8, 0, 0, &q, &mut flat);
        assert_eq!(flat[0], round(8.0 * 72.0 / 5.0));
        assert!(flat[1..].iter().all(|&c| c == 0));
        // Almost flat (one sample off): the full transform, whose DC agrees.
        let mut px = [200u8; 64];
        px[63] = 201;
        let mut full = [0i32; 64];
        t.block(&px, 8, 0, 0, &q, &mut full);
        assert_eq!(full[0], flat[0]);
    }

    #[test]
    fn dct_of_a_cosine_has_one_coefficient() {
        // A horizontal cosine of frequency 1 puts all its energy in coefficient (0, 1).
        let mut px = [0u8; 64];
        let c = dct_matrix();
        for y in 0..8 {
            for x in 0..8 {
                px[y * 8 + x] = (128.0 + 100.0 * c[1][x] * 2.0).round() as u8;
            }
        }
        let q = Quant::new([1; 64]);
        let mut zz = [0i32; 64];
        Transform::new().block(&px, 8, 0, 0, &q, &mut zz);
        // 200·Σx C[1][x]² = 200 per row, times Σr C[0][r] = 8/(2√2): 565.7.
        assert!((zz[1] - 566).abs() <= 2, "{zz:?}");
        // The rest is the rounding of the samples to bytes (the same in every row, so it adds up
        // along the columns).
        assert!(zz.iter().enumerate().all(|(i, &v)| i == 1 || v.abs() <= 2), "{zz:?}");
    }

    #[test]
    fn run_shortcuts_convert_like_every_pixel() {
        // Runs of one colour, broken at awkward places, plus noise and an odd tail.
        let w = 61;
        let px = |x: usize, y: usize| -> [u8; 3] {
            match x {
                0..=20 => [10, 200, 30],
                21..=22 => [(x * 40) as u8, y as u8, 7],
                23..=50 => [250, 250, 250],
                _ => [(x * 13 + y) as u8, (x * 7) as u8, (y * 5) as u8],
            }
        };
        let rows: Vec<Vec<u8>> = (0..2).map(|y| (0..w).flat_map(|x| px(x, y)).collect()).collect();
        let mut ys = vec![0u8; w];
        luma_row(&rows[0], &mut ys);
        for (x, &v) in ys.iter().enumerate() {
            let [r, g, b] = px(x, 0);
            assert_eq!(v, luma(r as i32, g as i32, b as i32), "luma at {x}");
        }
        let (mut cb, mut cr) = (vec![0u8; w / 2], vec![0u8; w / 2]);
        chroma_rows(&rows[0], &rows[1], &mut cb, &mut cr);
        for i in 0..w / 2 {
            let sum = |c: usize| {
                [(2 * i, 0), (2 * i + 1, 0), (2 * i, 1), (2 * i + 1, 1)]
                    .iter()
                    .map(|&(x, y)| px(x, y)[c] as i32)
                    .sum::<i32>()
            };
            assert_eq!((cb[i], cr[i]), chroma(sum(0), sum(1), sum(2), 2), "chroma at {i}");
        }
        // Grey stays grey.
        assert_eq!(chroma(4 * 77, 4 * 77, 4 * 77, 2), (128, 128));
        assert_eq!(luma(77, 77, 77), 77);
    }

    #[test]
    fn stuffing_and_padding() {
        let mut b = Bits { out: vec![], acc: 0, n: 0 };
        b.put(0xFF, 8);
        b.put(0x12, 8);
        b.put(0xFFFF, 16);
        b.put(0b101, 3);
        assert_eq!(b.finish(), [0xFF, 0x00, 0x12, 0xFF, 0x00, 0xFF, 0x00, 0b1011_1111]);
    }

    #[test]
    fn layout_of_the_file() {
        let img: Vec<u8> = (0..17 * 9 * 3).map(|i| (i * 7) as u8).collect();
        for (quality, hv) in [(85, 0x22), (95, 0x11)] {
            let jpg = encode(&img, 17, 9, quality).unwrap();
            assert_eq!(&jpg[..4], &[0xFF, 0xD8, 0xFF, 0xE0]);
            assert_eq!(&jpg[jpg.len() - 2..], &[0xFF, 0xD9]);
            let sof = jpg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
            assert_eq!(&jpg[sof + 5..sof + 9], &[0, 9, 0, 17], "height, then width");
            assert_eq!(jpg[sof + 11], hv);
        }
        assert!(encode(&img, 17, 10, 85).is_err(), "too few bytes");
        assert!(encode(&[], 0, 0, 85).is_err());
        assert!(encode(&[0; 3], 70_000, 1, 85).is_err());
    }
}
