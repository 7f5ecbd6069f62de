//! Bodies more than one area answers with.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{}`: what the keyboard and accessibility actions answer on success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Empty {}
