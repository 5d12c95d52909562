//! The checks against a database: the reversibility check (`verify`), the
//! drift check against diesel's `table!`s, and the schema snapshots both
//! compare. They run the executor's entry points; they never plan.

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[doc(hidden)]
pub mod drift;
pub(crate) mod schema;
pub(crate) mod verify;
