//! `daytona-daemon`: see the library crate for the whole story.

fn main() -> std::process::ExitCode {
    daemon::main_entry()
}
