//! The daemon's request layer: every route takes its input through these extractors, which
//! reject with the JSON envelope (see `toolbox_envelope::extract` for the rules they share with
//! the computer-use agent). File paths come in raw, as bytes, through [`crate::fspath`].

pub use toolbox_envelope::extract::{
    Json, MAX_JSON_BODY, Path, Query, Rejection, Ws, decode, parse_query, read_body,
};
