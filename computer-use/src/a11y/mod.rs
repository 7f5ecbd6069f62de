//! Accessibility over AT-SPI (spec computer-use.md §7, sdk-0.226.md §2.6): tree, find, focus,
//! invoke, set value.
//!
//! `api` serves the routes over `service`. Below it: `bus` owns the connection to the AT-SPI
//! bus and bounded calls on it, `walk` the concurrent tree walks (for which `cache` reads a
//! whole application in one call), `scope` where a walk starts, `filter` the find filter, `ops`
//! the node actions, `node` ids, states and budgets, `error` the failure classes. Extensions
//! (not in Daytona's daemon): `wait` waits for a condition, woken by the AT-SPI events `events`
//! subscribes to; `ops` also finds where element-targeted input acts.

pub mod api;
mod bus;
mod cache;
mod error;
mod events;
#[cfg(test)]
mod fake;
mod filter;
mod node;
mod ops;
mod scope;
pub mod service;
mod wait;
mod walk;
