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
//! # The tracking table
//!
//! One append-only row per executed step; the applied state is derived from
//! it (for each version, its last row decides: `up` means applied).
//!
//! | column | type | |
//! |---|---|---|
//! | `change` | integer, primary key | 1, 2, 3, ... in commit order |
//! | `version` | text | the script's version as written |
//! | `name` | text | the script's name |
//! | `description` | text | empty when none |
//! | `kind` | text | `code` or `sql` |
//! | `direction` | text | `up` or `down` |
//! | `executed` | boolean | false when recorded without running (skipped irreversible) |
//! | `applied_at` | text (SQLite, UTC ISO 8601) / timestamptz (PostgreSQL) / datetime(3), UTC (MySQL) | when it committed |
//! | `duration_ms` | bigint | how long the step took |
//! | `checksum` | text, nullable | SHA-256 of `up.sql` (CRLF read as LF), SQL only |
//! | `dirty` | boolean | true while a step that cannot be rolled back is in progress |
//! | `down_sql` | text, nullable | on an SQL migration's `up` row, its `down` SQL (empty: it has none), so that a build without the migration can revert it |
//! | `authorized_by` | text, nullable | on a `down` row run by start-up under a downgrade authorization, that authorization: spent |

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

pub use adopt::{Adoption, DIESEL_TABLE};
pub use backend::{Backend, SqlStepError};
/// `check_schema!`'s expansion names `$crate::drift`.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
#[doc(hidden)]
pub use checks::drift;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use checks::drift::{ColumnList, DeclaredColumn, DeclaredTable, schema_drift};
pub use checks::schema::{ColumnSchema, Schema, TableSchema};
pub use checks::verify::{Reversibility, VerifyReport};
pub use error::{Error, StepError};
pub use history::{HistoryRow, NewRow};
pub use migrator::{DEFAULT_TABLE, Migrator, Resolution};
pub use report::{DryRun, Progress, Report, State, Status, StatusRow, StepReport};
pub use table::TableName;

/// The diesel this crate is built with, for scripts' queries.
pub use diesel;
