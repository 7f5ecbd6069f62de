//! Screenshot query parsing with the reference's exact names, order and messages
//! (spec computer-use.md §3).

/// The raw query as (name, value) pairs, percent-decoded; lookups take the first occurrence.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect();
        Query(pairs)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn go_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// The `ifNoneMatch` alternative to the `If-None-Match` header (our extension), first
/// occurrence.
pub fn if_none_match(q: &Query) -> Option<&str> {
    q.get("ifNoneMatch")
}

/// `show_cursor` wins over `showCursor`; absent → false.
pub fn show_cursor(q: &Query) -> Result<bool, String> {
    for name in ["show_cursor", "showCursor"] {
        if let Some(v) = q.get(name) {
            return go_bool(v).ok_or_else(|| format!("invalid query parameter {name}: must be a boolean"));
        }
    }
    Ok(false)
}

/// The region's rectangle: `x`, `y` any integers, `width`, `height` positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

/// Regions beyond this many pixels are refused, so one request cannot allocate gigabytes.
pub const MAX_REGION_PIXELS: u64 = 64 * 1024 * 1024;

pub fn region(q: &Query) -> Result<Region, String> {
    let int = |k: &str| -> Result<i64, String> {
        let v = q
            .get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("missing required query parameter: {k}"))?;
        go_int(v).ok_or_else(|| format!("invalid query parameter {k}: must be an integer"))
    };
    let x = int("x")?;
    let y = int("y")?;
    let width = int("width")?;
    if width <= 0 {
        return Err("invalid query parameter width: must be greater than zero".into());
    }
    let height = int("height")?;
    if height <= 0 {
        return Err("invalid query parameter height: must be greater than zero".into());
    }
    let fits = |v: i64| i32::try_from(v).is_ok();
    if !fits(x) || !fits(y) || !fits(width) || !fits(height) {
        return Err("region is out of range".into());
    }
    if width as u64 * height as u64 > MAX_REGION_PIXELS {
        return Err(format!("region is too large: at most {MAX_REGION_PIXELS} pixels"));
    }
    Ok(Region { x: x as i32, y: y as i32, width: width as u32, height: height as u32 })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    /// Anything else: the unscaled PNG the reference falls back to.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compression {
    pub format: Format,
    pub quality: u8,
    pub scale: f64,
}

pub fn compression(q: &Query) -> Result<Compression, String> {
    let format = match q.get("format").filter(|v| !v.is_empty()).unwrap_or("png") {
        "png" => Format::Png,
        "jpeg" => Format::Jpeg,
        _ => Format::Other,
    };
    let quality = match q.get("quality").filter(|v| !v.is_empty()) {
        None => 85,
        Some(v) => {
            let n = go_int(v).ok_or("invalid query parameter quality: must be an integer")?;
            if !(1..=100).contains(&n) {
                return Err("invalid query parameter quality: must be between 1 and 100".into());
            }
            n as u8
        }
    };
    let scale = match q.get("scale").filter(|v| !v.is_empty()) {
        None => 1.0,
        Some(v) => {
            let s: f64 = v.parse().map_err(|_| "invalid query parameter scale: must be a number")?;
            if !(0.1..=1.0).contains(&s) {
                return Err("invalid query parameter scale: must be between 0.1 and 1.0".into());
            }
            s
        }
    };
    Ok(Compression { format, quality, scale })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn show_cursor_names_and_values() {
        assert!(!show_cursor(&q("")).unwrap());
        assert!(show_cursor(&q("showCursor=true")).unwrap());
        assert!(show_cursor(&q("showCursor=T")).unwrap());
        assert!(!show_cursor(&q("show_cursor=0&showCursor=true")).unwrap());
        assert_eq!(
            show_cursor(&q("showCursor=yes")).unwrap_err(),
            "invalid query parameter showCursor: must be a boolean"
        );
        assert_eq!(
            show_cursor(&q("show_cursor=")).unwrap_err(),
            "invalid query parameter show_cursor: must be a boolean"
        );
        // Only the exact lower-case names count, and the first occurrence wins.
        assert!(!show_cursor(&q("ShowCursor=x")).unwrap());
        assert!(show_cursor(&q("showCursor=1&showCursor=x")).unwrap());
    }

    #[test]
    fn region_params() {
        assert_eq!(
            region(&q("x=-5&y=%2B7&width=10&height=2")).unwrap(),
            Region { x: -5, y: 7, width: 10, height: 2 }
        );
        assert_eq!(region(&q("y=1&width=1&height=1")).unwrap_err(), "missing required query parameter: x");
        assert_eq!(
            region(&q("X=1&y=1&width=1&height=1")).unwrap_err(),
            "missing required query parameter: x"
        );
        assert_eq!(
            region(&q("x=1&y=a&width=1&height=1")).unwrap_err(),
            "invalid query parameter y: must be an integer"
        );
        assert_eq!(
            region(&q("x=1&y=1&width=1.5&height=1")).unwrap_err(),
            "invalid query parameter width: must be an integer"
        );
        assert_eq!(
            region(&q("x=1&y=1&width=0&height=1")).unwrap_err(),
            "invalid query parameter width: must be greater than zero"
        );
        assert_eq!(region(&q("x=1&y=1&width=1")).unwrap_err(), "missing required query parameter: height");
        assert_eq!(
            region(&q("x=1&y=1&width=3&height=-1")).unwrap_err(),
            "invalid query parameter height: must be greater than zero"
        );
        assert!(region(&q("x=0&y=0&width=100000&height=100000")).is_err());
    }

    #[test]
    fn compression_params() {
        assert_eq!(
            compression(&q("")).unwrap(),
            Compression { format: Format::Png, quality: 85, scale: 1.0 }
        );
        let c = compression(&q("format=jpeg&quality=40&scale=0.5")).unwrap();
        assert_eq!((c.format, c.quality, c.scale), (Format::Jpeg, 40, 0.5));
        assert_eq!(compression(&q("format=webp")).unwrap().format, Format::Other);
        assert_eq!(compression(&q("format=jpg")).unwrap().format, Format::Other);
        assert_eq!(
            compression(&q("quality=x")).unwrap_err(),
            "invalid query parameter quality: must be an integer"
        );
        assert_eq!(
            compression(&q("quality=0")).unwrap_err(),
            "invalid query parameter quality: must be between 1 and 100"
        );
        assert_eq!(
            compression(&q("quality=101")).unwrap_err(),
            "invalid query parameter quality: must be between 1 and 100"
        );
        assert_eq!(
            compression(&q("scale=x")).unwrap_err(),
            "invalid query parameter scale: must be a number"
        );
        assert_eq!(
            compression(&q("scale=0.05")).unwrap_err(),
            "invalid query parameter scale: must be between 0.1 and 1.0"
        );
        assert_eq!(
            compression(&q("scale=NaN")).unwrap_err(),
            "invalid query parameter scale: must be between 0.1 and 1.0"
        );
        assert_eq!(compression(&q("scale=1e-1")).unwrap().scale, 0.1);
        // Quality is checked before scale.
        assert!(compression(&q("quality=0&scale=9")).unwrap_err().contains("quality"));
    }
}
