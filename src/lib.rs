//! # migrate
//!
//! Versioned, compile-time-checked database migrations for Rust.
//!
//! Annotate a unit struct with [`migration_script`] and implement
//! [`MigrationScript`] for it. The attribute registers the script (no list to
//! maintain) and rejects, at compile time, an invalid semver version or a
//! version used twice in the crate.
//!
//! ```
//! use migrate::{migration_script, BoxError, MigrationScript};
//!
//! /// Stands in for a real connection type such as `diesel::SqliteConnection`.
//! pub struct Conn(Vec<String>);
//!
//! #[migration_script(version = "1.0.1", description = "add full name to users")]
//! pub struct AddUserFullName;
//!
//! impl MigrationScript for AddUserFullName {
//!     type Connection = Conn;
//!     fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
//!         conn.0.push("ALTER TABLE users ADD COLUMN full_name TEXT".into());
//!         Ok(())
//!     }
//! }
//!
//! let registry = migrate::registered().unwrap();
//! let script = registry.iter().next().unwrap();
//! assert_eq!((script.version.to_string(), script.script.name()), ("1.0.1".into(), "AddUserFullName"));
//! ```
//!
//! Scripts in a library crate are linked into a binary only when the binary
//! uses that crate: add `use my_migrations as _;` to it.

// The attribute's expansion names `::migrate::…` inside this package's own
// examples and tests; this makes the path valid in the library too.
extern crate self as migrate;

pub use migrate_core::*;
pub use migrate_diesel::{
    Adoption, Backend, ColumnSchema, DEFAULT_TABLE, DIESEL_TABLE, DryRun, Error, HistoryRow,
    Migrator, NewRow, Progress, Report, Resolution, Reversibility, Schema, State, Status,
    StatusRow, StepError, StepReport, TableName, TableSchema, VerifyReport, diesel,
};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use migrate_diesel::{DeclaredColumn, DeclaredTable, check_schema};

/// The command line inside the application's binary: `migrate::cli::run`
/// (feature `cli`, on by default).
#[cfg(feature = "cli")]
pub use migrate_diesel::cli;
pub use migrate_macros::{embed_sql, migration_script};
