//! The executor's errors. Each names the versions and scripts involved and
//! says what to do next. Types only: nothing here runs.

use std::time::Duration;

use migrate_core::{
    AppVersion, AppVersionError, Direction, PlanError, PolicyError, RegistryError, ScriptError,
    ScriptRef, Version,
};

/// What went wrong while planning or running migrations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The scripts could not be collected (duplicate versions across crates,
    /// scripts for another backend, ...).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The application version is invalid.
    #[error(transparent)]
    AppVersion(#[from] AppVersionError),
    /// The planner refused; nothing has run.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A start-up setting (the policy for a database ahead, or the
    /// downgrade authorization) is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Start-up found scripts applied above the application version, no
    /// downgrade authorized, and the policy
    /// [`WhenAhead::Refuse`](migrate_core::WhenAhead::Refuse). Nothing was
    /// changed.
    #[error(
        "the database is ahead of the application version {} ({}): {} {} applied above it; the policy for a database ahead is to refuse, so nothing was changed. Deploy a build at {} or later; or, {advice}",
        app.version, app.source, ScriptRef::list(ahead), if ahead.len() == 1 { "is" } else { "are" },
        ahead.first().map_or_else(String::new, |a| a.version.to_string())
    )]
    DatabaseAhead {
        /// The application version, and where it came from.
        app: AppVersion,
        /// The applied scripts above it, highest first.
        ahead: Vec<ScriptRef>,
        /// How they can be reverted: `down --to`, or a start-up
        /// authorization ([`AUTHORIZE_DOWNGRADE_VAR`](migrate_core::AUTHORIZE_DOWNGRADE_VAR)), when
        /// this build can; else why it cannot.
        advice: String,
    },
    /// The configured tracking-table name is not a plain identifier.
    #[error(
        "`{name}` is not a valid table name: use ASCII letters, digits and `_`, not starting with a digit, at most 57 bytes (its state table `<name>_state` must fit the 63 bytes PostgreSQL allows)"
    )]
    InvalidTableName {
        /// The rejected name.
        name: String,
    },
    /// A query of the executor's own failed.
    #[error("{context}: {source}")]
    Database {
        /// What the executor was doing.
        context: String,
        /// The database's error.
        source: diesel::result::Error,
    },
    /// The tracking table holds a version that is not semver.
    #[error(
        "the tracking table `{table}` holds an invalid version in change {change}: {source}; fix or delete that row"
    )]
    CorruptHistory {
        /// The table.
        table: String,
        /// The change number of the row.
        change: i64,
        /// The parse error.
        source: migrate_core::VersionError,
    },
    /// Another instance held the migration lock for longer than the timeout.
    #[error(
        "timed out after {waited:?} waiting for the migration lock on `{table}`: another instance is migrating; try again, or raise the lock timeout{hint}"
    )]
    LockTimeout {
        /// The table the lock protects.
        table: String,
        /// How long we waited.
        waited: Duration,
        /// What the backend could tell of the holder, if anything (begins
        /// with a separator).
        hint: String,
    },
    /// The connection's statements do not all run on the server session
    /// that took the migration lock: a transaction pooler is between, and
    /// the lock does not hold. Nothing was changed by what failed.
    #[error(
        "the migration lock on `{table}` does not hold on this connection ({what}): it goes through a transaction pooler, such as PgBouncer with pool_mode = transaction, which runs each transaction on whichever server session is free, so a session's lock protects nothing; nothing was changed by this. Migrate through a direct connection to the server, or a session-mode pool (the application can keep the transaction pool)"
    )]
    LockNotHeld {
        /// The table the lock protects.
        table: String,
        /// What showed it.
        what: String,
    },
    /// The lock could not be taken or released.
    #[error("migration lock on `{table}`: {message}")]
    Lock {
        /// The table the lock protects.
        table: String,
        /// What failed.
        message: String,
    },
    /// A check that migrates and reverts needs an empty database.
    #[error(
        "the {check} needs a fresh database, but this one holds {found}; run it on an empty database (for SQLite, `:memory:`), never on one that matters"
    )]
    NeedsFreshDatabase {
        /// The check.
        check: &'static str,
        /// What was found.
        found: String,
    },
    /// The reversibility check found a broken script (or, in strict mode,
    /// an irreversible one).
    #[error("{report}")]
    NotReversible {
        /// What was found, script by script.
        report: crate::report::VerifyReport,
    },
    /// The schema the migrations build differs from diesel's `table!`
    /// declarations.
    #[error(
        "the migrations and schema.rs disagree ({} difference(s)):\n  - {}",
        lines.len(),
        lines.join("\n  - ")
    )]
    SchemaDrift {
        /// Each difference.
        lines: Vec<String>,
    },
    /// Adopting a diesel_migrations history was refused; nothing changed.
    #[error("adopting the diesel history refused, nothing was changed: {reason}")]
    AdoptionRefused {
        /// Why.
        reason: String,
    },
    /// This backend does not offer the operation.
    #[error("{what} is not supported on {backend} yet")]
    Unsupported {
        /// The operation.
        what: &'static str,
        /// The backend.
        backend: &'static str,
    },
    /// Migrating (or `baseline`, `resolve`, `adopt_diesel`) was asked for
    /// inside the caller's transaction on a database whose DDL would commit
    /// that transaction.
    #[error(
        "refused to migrate (or write to `{table}`) inside a transaction of yours, nothing was run: on {backend} DDL, creating the tracking table included, commits the open transaction implicitly; run the migrator on a connection outside any transaction"
    )]
    InsideTransaction {
        /// The tracking table.
        table: String,
        /// The backend.
        backend: &'static str,
    },
    /// Atomic mode was asked for where it cannot hold.
    #[error("atomic mode refused, nothing was run: {reason}")]
    AtomicRefused {
        /// Why.
        reason: String,
    },
    /// A version given on the command line or to the API is not semver.
    #[error("invalid {what}: {source}")]
    InvalidVersion {
        /// What the version was for.
        what: &'static str,
        /// The parse error.
        source: migrate_core::VersionError,
    },
    /// A baseline cannot be recorded.
    #[error("baseline refused on `{table}`, nothing was recorded: {reason}")]
    BaselineRefused {
        /// The tracking table.
        table: String,
        /// Why.
        reason: String,
    },
    /// A step failed.
    #[error("{}", step_failed(*direction, version, name, *transactional, *atomic, *dirty, source))]
    StepFailed {
        /// Up or down.
        direction: Direction,
        /// The script's version.
        version: Version,
        /// The script's name.
        name: String,
        /// Whether the step ran inside a transaction.
        transactional: bool,
        /// Whether the whole plan ran in one transaction.
        atomic: bool,
        /// Whether the step is left marked in progress (it may be
        /// half-applied; every run refuses until it is resolved).
        dirty: bool,
        /// What failed.
        source: StepError,
    },
    /// A step that cannot be rolled back started and did not finish (a
    /// failure or a crash): the database may be half-way through it.
    #[error(
        "migration {version} `{name}` ({direction}) started in change {change} at {started} and did not finish; it could not be rolled back, so the database may hold part of it. Nothing was run. Inspect the database and repair it, then record the outcome: `resolve --version {version} --completed` if all of its changes are in place, or `resolve --version {version} --rolled-back` if none are (API: Migrator::resolve){}",
        also_in_progress(others)
    )]
    Dirty {
        /// The script's version.
        version: String,
        /// The script's name.
        name: String,
        /// Up or down.
        direction: String,
        /// The change number of its row.
        change: i64,
        /// When it started.
        started: String,
        /// The other steps marked in progress (version and name), each to
        /// resolve in turn: an atomic run whose step ended the one
        /// transaction marks every step it ran.
        others: Vec<String>,
    },
    /// `resolve` found nothing to resolve for that version.
    #[error("nothing to resolve for {version} in `{table}`: {reason}")]
    NothingToResolve {
        /// The version asked about.
        version: String,
        /// The tracking table.
        table: String,
        /// What the history holds instead.
        reason: String,
    },
}

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A code script returned an error.
    #[error(transparent)]
    Script(ScriptError),
    /// A code script panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// An SQL migration failed: the server's message, with its detail and
    /// hint where it gives them (PostgreSQL does).
    #[error("{}", with_detail(.0))]
    Sql(diesel::result::Error),
    /// As [`Sql`](Self::Sql), where the server said which statement failed:
    /// the line of the step's SQL (from 1) and its text.
    #[error("{} (at line {line} of its SQL: `{text}`)", with_detail(source))]
    SqlAt {
        /// The server's error.
        source: diesel::result::Error,
        /// The line, from 1.
        line: usize,
        /// The line's text, trimmed (at most 200 characters).
        text: String,
    },
    /// Its history row could not be written.
    #[error("recording it in the history failed: {0}")]
    Record(diesel::result::Error),
    /// Its transaction could not be opened or committed.
    #[error("its transaction failed: {0}")]
    Transaction(String),
    /// Its SQL or code ended the transaction the step ran in (see
    /// [`SqlStepError::EndedItsTransaction`](crate::SqlStepError::EndedItsTransaction)).
    #[error(
        "it ended the transaction it ran in (a `COMMIT`, `ROLLBACK`, `END` or `PREPARE TRANSACTION`; a prepared one waits in `pg_prepared_xacts`); take transaction control out of the migration, or run it outside a transaction (`run_in_transaction = false`, `transaction = false`)"
    )]
    EndedItsTransaction,
    /// The connection was lost before the database answered.
    #[error("the connection was lost before the database answered: {0}")]
    OutcomeUnknown(diesel::result::Error),
    /// Its history row was refused because the server session that ran
    /// the step does not hold the migration lock: the connection goes
    /// through a transaction pooler.
    #[error(
        "the server session it ran on does not hold the migration lock (or another process wrote the same history row): the connection goes through a transaction pooler, such as PgBouncer with pool_mode = transaction, where a session's lock does not hold; migrate through a direct connection to the server, or a session-mode pool (the application can keep the transaction pool). {0}"
    )]
    LockNotHeld(diesel::result::Error),
}

fn step_failed(
    direction: Direction,
    version: &Version,
    name: &str,
    transactional: bool,
    atomic: bool,
    dirty: bool,
    source: &StepError,
) -> String {
    let resolve = format!(
        "it stays marked in progress, `status` shows it, and every run refuses until you inspect the database, repair it and record the outcome (`resolve --version {version} --completed` or `--rolled-back`)"
    );
    let consequence = if let StepError::OutcomeUnknown(_) = source {
        "the step and its history row were committed together or not at all (unless its SQL ended its transaction itself); the next run reads the history and goes on from there".to_owned()
    } else if let (true, StepError::EndedItsTransaction) = (dirty, source) {
        let before = if atomic {
            ", and so may the steps before it in this atomic run"
        } else {
            ""
        };
        format!(
            "what it ran after that, and before it if it committed, was kept without its history row, so it may be HALF-APPLIED{before}: {resolve}"
        )
    } else if dirty && transactional {
        format!(
            "a statement in it committed implicitly (as DDL does on this database), so it may be HALF-APPLIED: {resolve}"
        )
    } else if dirty {
        format!("it ran OUTSIDE a transaction and may be HALF-APPLIED: {resolve}")
    } else if atomic {
        "the whole plan ran in one transaction and was rolled back: the database is unchanged"
            .to_owned()
    } else if transactional {
        "it ran in a transaction, so neither its changes nor its history row were kept; the steps before it are applied".to_owned()
    } else {
        "it ran OUTSIDE a transaction and may be HALF-APPLIED: inspect the database and repair it before running again".to_owned()
    };
    format!("migration {version} `{name}` ({direction}) failed: {source}; {consequence}")
}

impl Error {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(diesel::result::Error) -> Error {
        let context = context.into();
        move |source| Error::Database { context, source }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(source: diesel::result::Error) -> Self {
        Error::Database {
            context: "database error".into(),
            source,
        }
    }
}

/// The tail of [`Error::Dirty`]'s message naming the other steps marked in
/// progress.
fn also_in_progress(others: &[String]) -> String {
    if others.is_empty() {
        String::new()
    } else {
        format!(
            ". Also marked in progress, to resolve the same way: {}",
            others.join(", ")
        )
    }
}

/// A database error as the server gave it: its message, then its detail
/// and its hint when it has them (diesel's own display shows the message
/// alone).
fn with_detail(error: &diesel::result::Error) -> String {
    let diesel::result::Error::DatabaseError(_, info) = error else {
        return error.to_string();
    };
    let mut text = info.message().to_owned();
    for (label, part) in [("detail", info.details()), ("hint", info.hint())] {
        if let Some(part) = part.filter(|p| !p.is_empty()) {
            text.push_str(&format!("; {label}: {part}"));
        }
    }
    text
}
