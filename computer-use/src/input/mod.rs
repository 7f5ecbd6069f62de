//! Mouse and keyboard over XTEST (spec computer-use.md §4–5, sdk-0.226.md §3.6, §4.3).
//!
//! `api` validates first (400 `bad request: <reference text>`), then runs the X sequence on a
//! blocking thread: `mouse` and `keyboard` are the sequences, `keys` the key-name rules,
//! `modifiers` the held modifiers around a sequence, `quote` Go's string quoting for messages.

pub mod api;
pub mod keyboard;
pub mod keys;
pub mod modifiers;
pub mod mouse;
pub mod quote;
