//! Display information and the window list (spec computer-use.md §6, recommended variant). The
//! X11 service does the work (`screens`, `windows`); `api` serves it.

pub mod api;
