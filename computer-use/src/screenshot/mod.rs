//! Screenshots (spec computer-use.md §3): full, region, compressed; PNG or JPEG; cursor overlay.
//!
//! `api` serves the routes, `query` reads their parameters, `service` captures and encodes,
//! `image` draws, scales and encodes pixels.

pub mod api;
pub mod image;
pub mod query;
pub mod service;
