//! The X11 CLIPBOARD selection as UTF-8 text (an extension: not in Daytona's daemon).
//!
//! `api` serves `GET`/`POST /computeruse/clipboard`; `service` keeps one selection owner per
//! display; `owner` owns the selection and answers other clients' pastes (INCR for large
//! values); `read` converts a foreign owner's selection; `text` holds the limits, Latin-1 and
//! INCR chunking.

pub mod api;
mod owner;
mod read;
pub mod service;
pub mod text;
