//! Runs `migrate` plans on diesel connections.
//!
//! - [`Migrator`]: the start-up API (`run`, `plan`, `status`), and the
//!   checks beyond it: [`Migrator::verify`] (every `down` restores the
//!   schema), [`check_schema!`] (the migrations build what diesel's `table!`
//!   declares) and [`Migrator::adopt_diesel`] (a diesel_migrations history as
//!   the base).
//! - [`Backend`]: the narrow interface each database implements: tracking
//!   table, history rows, lock, step transaction. SQLite (feature `sqlite`,
//!   bundled), PostgreSQL (feature `postgres`) and MySQL or MariaDB (feature
//!   `mysql`).
//!
//! The modules, each with what it owns:
//! - `migrator`: the public [`Migrator`], and the algorithm in its parts
//!   (setup, start-up, the plan runner, lock and history access, repair);
//! - `backend`: the [`Backend`] trait and one file per database;
//! - `history`: the tracking table's rows and the state derived from them;
//! - `checks`: `verify` and the drift check, over the schema snapshots
//!   that `backend::schema` holds;
//! - `adopt`: taking over a diesel_migrations history;
//! - `report`, `error`, `table`: what entry points return, their errors,
//!   and the tracking table's name;
//! - `cli`: the command line.

// Errors carry the versions and database errors they report.
#![allow(clippy::result_large_err)]

mod adopt;
mod backend;
mod checks;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod history;
mod migrator;
mod report;
mod table;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub mod testing;

pub use adopt::{Adoption, DIESEL_TABLE};
pub use backend::schema::{ColumnSchema, Schema, TableSchema};
pub use backend::{Backend, Connectable, SqlStepError};
/// `check_schema!`'s expansion names `$crate::drift`.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[doc(hidden)]
pub use checks::drift;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use checks::drift::{ColumnList, DeclaredColumn, DeclaredTable, schema_drift};
pub use error::{Error, StepError};
pub use history::{HistoryRow, NewRow};
pub use migrator::{DEFAULT_TABLE, Migrator, Resolution};
pub use report::{
    DryRun, Progress, Report, Reversibility, State, Status, StatusRow, StepReport, VerifyReport,
};
pub use table::TableName;

/// The diesel this crate is built with, for scripts' queries.
pub use diesel;
