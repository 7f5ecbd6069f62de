//! Finding a program on a `PATH`: the interpreters' `python3`/`node` and the language servers.
//! The `PATH` is the child environment's (which `POST /env` may change), not the daemon's own.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The first of `names` found as an executable file in a directory of `path`, names in order of
/// preference and directories in `PATH` order for each. A name with a `/` is taken as a path.
pub fn find_program(names: &[&str], path: Option<&OsStr>) -> Option<PathBuf> {
    for name in names {
        if name.contains('/') {
            if is_executable(Path::new(name)) {
                return Some(PathBuf::from(name));
            }
            continue;
        }
        for dir in std::env::split_paths(path?) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_lookup_follows_the_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("python");
        std::fs::write(&bin, "").unwrap();
        assert_eq!(find_program(&["python3"], Some(dir.path().as_os_str())), None);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program(&["python3", "python"], Some(dir.path().as_os_str())), Some(bin.clone()));
        assert_eq!(find_program(&["python"], None), None);
        // A path is used as it is, PATH or not.
        let given = bin.to_str().unwrap();
        assert_eq!(find_program(&[given], None), Some(bin.clone()));
        assert_eq!(find_program(&["/no/such/python"], Some(dir.path().as_os_str())), None);
    }
}
