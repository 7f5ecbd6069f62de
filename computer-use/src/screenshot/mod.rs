//! Screenshots (spec computer-use.md §3): full, region, compressed; PNG or JPEG; cursor overlay.
//!
//! `api` serves the routes, `query` reads their parameters, `service` captures and encodes,
//! `image` draws, scales and encodes pixels (JPEG through `jpeg`, our encoder for screen content), `etag` names frames so an unchanged screen is a
//! 304 (an extension: not in Daytona's daemon).

pub mod api;
pub mod etag;
pub mod image;
pub mod jpeg;
pub mod query;
pub mod service;
