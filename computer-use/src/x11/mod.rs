//! X11: the connection the input, screenshot and display areas share (`service`), and what it
//! is made of: one open connection (`conn`), screen capture (`capture`, `shm`), whether the
//! screen changed (`damage`), the keyboard mapping (`keymap`), the window list (`windows`) and
//! the failure type (`error`). `api` says how those failures reach clients; the routes
//! themselves belong to the areas.

pub mod api;
pub mod capture;
pub mod conn;
pub mod damage;
pub mod error;
pub mod keymap;
pub mod service;
mod shm;
pub mod windows;
