//! Reading the end of a desktop process's log.

use std::path::Path;

/// Bound on what the logs routes return: the end of the file.
pub const MAX_LOG_BYTES: u64 = 4 << 20;

/// The last `max` bytes of a file, as text.
pub fn read_tail(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::with_capacity(len.min(max) as usize);
    f.take(max).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_bounded() {
        let dir = std::env::temp_dir().join(format!("cu-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.log");
        std::fs::write(&f, "0123456789").unwrap();
        assert_eq!(read_tail(&f, 4).unwrap(), "6789");
        assert_eq!(read_tail(&f, 100).unwrap(), "0123456789");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
