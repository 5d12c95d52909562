//! # migrate
//!
//! Versioned, compile-time-checked database migrations for Rust, run
//! through diesel on SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! SQL folders (`migrations/<version>_<name>/up.sql`, and `down.sql`) are
//! embedded at build time by [`embed_sql!`]; Rust migrations are structs
//! annotated with [`#[migration_script]`](migration_script) that implement
//! [`MigrationScript`]. Both are registered without a list, and join one
//! plan in semver order. At start-up, [`Migrator::run`] applies what the
//! database lacks up to the application's own version, and never reverts
//! on its own. With arguments, [`cli::run`] is the command line (`status`,
//! `plan`, `up`, `down`, `create`, ...).
//!
//! ```
//! use diesel::{Connection, SqliteConnection};
//! use migrate::{BoxError, MigrationScript, Migrator, migration_script};
//!
//! // Every folder of `tests/fixtures/doc-migrations` (relative to the crate's
//! // manifest): `1.0.0_create_users/up.sql` creates `users(id, name)`.
//! migrate::embed_sql!("tests/fixtures/doc-migrations");
//!
//! /// A migration in Rust, with real diesel queries.
//! #[migration_script(version = "1.0.1", description = "seed the first user")]
//! pub struct SeedUsers;
//!
//! impl MigrationScript for SeedUsers {
//!     type Connection = SqliteConnection;
//!
//!     fn up(&self, conn: &mut SqliteConnection) -> Result<(), BoxError> {
//!         use diesel::RunQueryDsl;
//!         diesel::sql_query("INSERT INTO users (name) VALUES ('Ada')").execute(conn)?;
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! // An application passes `migrate::package_version!()`: its own version.
//! let migrator = Migrator::new("1.0.1");
//! let report = migrator.run(&mut conn)?;
//! assert_eq!(report.steps.len(), 2);
//! assert_eq!(report.to.map(|v| v.to_string()).as_deref(), Some("1.0.1"));
//! // Again: nothing to do.
//! assert!(migrator.run(&mut conn)?.steps.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! In `main`, hand the process's arguments to the command line when there
//! are any:
//!
//! ```no_run
//! # use std::process::ExitCode;
//! fn main() -> ExitCode {
//!     let migrator = migrate::Migrator::new(migrate::package_version!());
//!     if std::env::args_os().len() > 1 {
//!         return migrate::cli::run(migrator); // myapp status | plan | up | down | create ...
//!     }
//!     // ... start-up: migrator.run(&mut conn), then the application
//!     ExitCode::SUCCESS
//! }
//! ```
//!
//! Scripts in a library crate are linked into a binary only when the binary
//! uses that crate: add `use my_migrations as _;` to it. The guides are in
//! the repository's `docs/` folder.

// The attribute's expansion names `::migrate::…` inside this package's own
// examples and tests; this makes the path valid in the library too.
extern crate self as migrate;

/// The application's own package version, captured where the macro is
/// called: pass it to [`Migrator::new`].
pub use migrate_core::package_version;
pub use migrate_core::{BoxError, MigrationScript, Script, Target, Version, WhenAhead};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use migrate_diesel::check_schema;
pub use migrate_diesel::{Error, Migrator, Report, diesel};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use migrate_diesel::{migration_tests, testing};
pub use migrate_macros::{embed_sql, migration_script, test};

/// The command line inside the application's binary: [`cli::run`]
/// (feature `cli`, on by default).
#[cfg(feature = "cli")]
pub use migrate_diesel::cli;

/// Configuration: `migrate.toml` and db-migrate's `database.json`
/// ([`config::load`]), environments and connection strings.
pub use migrate_core::config;

/// What the entry points of [`Migrator`] return besides [`Report`]: the
/// dry run, `status`, progress, `verify`, `resolve` and adoption.
pub mod report {
    pub use migrate_diesel::{
        Adoption, DryRun, Progress, Report, Resolution, Reversibility, State, Status, StatusRow,
        StepError, StepReport, VerifyReport,
    };
}

/// The pure planner: from the applied and the known scripts to the steps
/// that reach a target.
pub mod plan {
    pub use migrate_core::{
        Action, AppliedScript, Direction, KnownScript, Origin, Plan, PlanError, PlanOptions,
        RecordedDown, ScriptKind, ScriptRef, Step, Target, plan,
    };
}

/// The registry of scripts: every `#[migration_script]` and `embed_sql!`
/// folder linked into the binary ([`registry::registered`]), plus scripts
/// listed by hand.
pub mod registry {
    pub use migrate_core::{
        Entry, Irreversible, Registry, RegistryError, RowSummary, Script, ScriptError, Settled,
        SettledCheck, registered, sql_checksum,
    };
}

/// Versions, and where the application's comes from.
pub mod version {
    pub use migrate_core::{
        APPLICATION_VERSION_VAR, AUTHORIZE_DOWNGRADE_VAR, AppVersion, AppVersionError,
        DowngradeAuthorization, FolderNameError, PolicyError, SettingSource, StartupPolicy,
        Version, VersionError, VersionSource, WHEN_AHEAD_VAR, WhenAhead, resolve_app_version,
        resolve_app_version_from, resolve_startup_policy, resolve_startup_policy_from,
    };
}

/// Schemas as the reversibility and drift checks read them, and the
/// declared tables of `check_schema!`.
pub mod schema {
    pub use migrate_diesel::{ColumnSchema, Schema, TableSchema};
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub use migrate_diesel::{DeclaredColumn, DeclaredTable};
}

/// What the executor needs from a database connection, and the tracking
/// table it writes.
pub mod backend {
    pub use migrate_diesel::{
        Backend, Connectable, DEFAULT_TABLE, DIESEL_TABLE, HistoryRow, NewRow, SqlStepError,
        TableName,
    };
}

/// Items the macros' expansions use. Not a public API.
#[doc(hidden)]
pub use migrate_core::__private;
