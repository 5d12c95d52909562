//! The checks against a database: the reversibility check (`verify`) and
//! the drift check against diesel's `table!`s, which compare the schema
//! snapshots a backend reads (`backend::schema`). They run the executor's
//! entry points; they never plan.

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[doc(hidden)]
pub mod drift;
pub(crate) mod verify;
