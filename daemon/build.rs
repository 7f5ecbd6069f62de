//! Embeds the web terminal's xterm.js files (daemon/src/terminal).
//!
//! They are third-party files, so they are not in the repository: `packaging/fetch-xterm.sh`
//! downloads them from the npm registry into `daemon/assets/xterm` (git-ignored), and this script
//! runs it when they are missing. Without network the build still succeeds, with a warning, and
//! the page then says how to get the files; `DAYTONA_XTERM_DIR` points at another copy and
//! `DAYTONA_SKIP_XTERM_FETCH=1` skips the download.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [&str; 3] = ["xterm.js", "xterm.css", "xterm-addon-fit.js"];

const MISSING_JS: &str = "window.DAYTONA_XTERM_MISSING = 'xterm.js was not bundled into this \
build of the daemon: run packaging/fetch-xterm.sh (needs npm or curl and network access), then \
rebuild.';\n";

fn present(dir: &Path) -> bool {
    FILES.iter().all(|f| dir.join(f).is_file())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=DAYTONA_XTERM_DIR");
    println!("cargo:rerun-if-env-changed=DAYTONA_SKIP_XTERM_FETCH");
    let dir =
        std::env::var_os("DAYTONA_XTERM_DIR").map(PathBuf::from).unwrap_or(manifest.join("assets/xterm"));
    for f in FILES {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }

    if !present(&dir) && std::env::var_os("DAYTONA_SKIP_XTERM_FETCH").is_none() {
        let script = manifest.join("../packaging/fetch-xterm.sh");
        match Command::new("bash").arg(&script).arg(&dir).status() {
            Ok(s) if s.success() => {}
            Ok(s) => println!("cargo:warning=packaging/fetch-xterm.sh failed ({s})"),
            Err(e) => println!("cargo:warning=cannot run packaging/fetch-xterm.sh: {e}"),
        }
    }

    let bundled = present(&dir);
    for f in FILES {
        let target = out.join(f);
        if bundled {
            std::fs::copy(dir.join(f), &target).expect("copy an xterm file");
        } else {
            let placeholder = if f == "xterm.js" { MISSING_JS } else { "" };
            std::fs::write(&target, placeholder).expect("write a placeholder");
        }
    }
    if !bundled {
        println!(
            "cargo:warning=the web terminal is built WITHOUT xterm.js (not in {}); its page will say \
             so. Run packaging/fetch-xterm.sh and rebuild.",
            dir.display()
        );
    }
    std::fs::write(out.join("xterm_bundled.rs"), format!("pub const BUNDLED: bool = {bundled};\n"))
        .expect("write xterm_bundled.rs");
}
