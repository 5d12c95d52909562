//! The narrow interface each database offers the executor, and one file
//! per database. Backends know SQL and their database; they never plan
//! (the algorithm lives once, in [`Migrator`](crate::Migrator)).

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
pub(crate) mod schema;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::borrow::Cow;
use std::time::Duration;

use diesel::Connection;

use migrate_core::Fingerprint;

use crate::history::{HistoryRow, NewRow};
use crate::{Error, TableName};
use migrate_core::RowSummary;

pub(crate) use rows::*;

/// What the executor needs from a database: a tracking table, a lock and a
/// transaction per step. Implemented for diesel's `SqliteConnection`,
/// `PgConnection` and `MysqlConnection`, each behind its feature.
pub trait Backend:
    Connection<TransactionManager = diesel::connection::AnsiTransactionManager> + Sized + 'static
{
    /// The backend's name, for messages.
    const NAME: &'static str;
    /// Whether DDL runs inside transactions (needed for atomic mode).
    const TRANSACTIONAL_DDL: bool;
    /// Whether the database itself ends a transaction, rolling it back,
    /// when some statements in it fail (SQLite: `RAISE(ROLLBACK)`, an `OR
    /// ROLLBACK` conflict, a full disk). Then an SQL step that finds its
    /// transaction gone after failing was rolled back whole: its SQL cannot
    /// have ended it, since a `COMMIT` or `ROLLBACK` there is refused before
    /// it runs.
    const ENDS_FAILED_TRANSACTIONS: bool = false;
    /// How the database reads quoted text and comments, for finding the
    /// statements of SQL migrations.
    const DIALECT: migrate_core::sql::Dialect;
    /// A held migration lock; [`unlock`](Self::unlock) releases it.
    type Lock;

    /// A plain identifier (a validated table name, or one of our column
    /// names) quoted for this database (default `"name"`).
    fn quote(name: &str) -> String {
        format!("\"{name}\"")
    }

    /// Prepares the connection before anything but the start-up check's one
    /// read (default: nothing).
    fn prepare(&mut self, lock_timeout: Duration) -> Result<(), Error> {
        let _ = lock_timeout;
        Ok(())
    }

    /// The names of `table`'s columns, in no particular order: none when
    /// it does not exist.
    fn columns(&mut self, table: &TableName) -> Result<Vec<String>, Error>;
    /// Whether `table` exists.
    fn table_exists(&mut self, table: &TableName) -> Result<bool, Error> {
        Ok(!self.columns(table)?.is_empty())
    }
    /// Creates the tracking table and its state table if they are missing,
    /// and gives a tracking table made by an earlier release the columns
    /// added since (`down_sql`, `authorized_by`).
    fn create_table(&mut self, table: &TableName) -> Result<(), Error>;
    /// The fingerprint recorded in the state table
    /// ([`TableName::state`]), or `None` when the table or its row is
    /// missing, or cannot be read: the full check decides then.
    fn read_state(&mut self, table: &TableName) -> Option<String>;
    /// Records `fingerprint` as that of the applied set, or with `None`
    /// forgets it (before the history changes). The state table exists:
    /// [`create_table`](Self::create_table) makes both.
    fn write_state(
        &mut self,
        table: &TableName,
        fingerprint: Option<&Fingerprint>,
    ) -> diesel::QueryResult<()> {
        write_state_row(self, table, fingerprint)
    }
    /// Passes `each` what start-up's check reads of every history row
    /// ([`RowSummary`]), by change number, one row at a time: nothing of
    /// the history is kept.
    fn summaries(
        &mut self,
        table: &TableName,
        each: &mut dyn FnMut(RowSummary<'_>),
    ) -> diesel::QueryResult<()>;
    /// Every history row, by change number. Without `added_columns`, the
    /// table predates the columns `down_sql` and `authorized_by`, which
    /// then read as `NULL`.
    fn read_history(
        &mut self,
        table: &TableName,
        added_columns: bool,
    ) -> Result<Vec<HistoryRow>, Error>;
    /// Appends one history row.
    fn record(&mut self, table: &TableName, row: &NewRow<'_>) -> diesel::QueryResult<()>;
    /// Appends history rows in order (atomic mode, at the end of the plan);
    /// default: one [`record`](Self::record) each.
    fn record_all(&mut self, table: &TableName, rows: &[NewRow<'_>]) -> diesel::QueryResult<()> {
        rows.iter().try_for_each(|row| self.record(table, row))
    }
    /// Marks the in-progress row `change` as finished, with its duration.
    fn finish(
        &mut self,
        table: &TableName,
        change: i64,
        duration_ms: i64,
    ) -> diesel::QueryResult<()>;
    /// Deletes the in-progress row `change` (a step known not to have
    /// changed anything, or one the user resolved as rolled back).
    fn forget(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()>;
    /// Sets the in-progress row `change`'s duration to -1, inside the
    /// step's transaction. If the mark is still there after that transaction
    /// rolled back, something in the step committed implicitly (DDL on
    /// MySQL); if it is gone, the step left nothing behind.
    fn probe(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()>;
    /// The schema as the database's catalog describes it, every user table
    /// but `exclude` (the tracking table).
    fn schema(&mut self, exclude: &TableName) -> Result<crate::Schema, Error> {
        let _ = exclude;
        Err(Error::Unsupported {
            what: "reading the schema (for `verify` and the drift check)",
            backend: Self::NAME,
        })
    }
    /// The column `s` of every row of `sql`, as text (for the executor's
    /// own reads of other tools' tables, such as diesel's history).
    fn strings(&mut self, sql: &str) -> diesel::QueryResult<Vec<String>>;
    /// Takes the migration lock, waiting at most `timeout`.
    fn lock(&mut self, table: &TableName, timeout: Duration) -> Result<Self::Lock, Error>;
    /// Releases the migration lock.
    fn unlock(&mut self, table: &TableName, lock: Self::Lock) -> Result<(), Error>;
    /// Whether [`sql_step`](Self::sql_step) sends an SQL step and its
    /// history row to the database as one message (default `false`). Where
    /// it does, the executor runs every SQL step that has a transaction of
    /// its own through it; elsewhere it opens the transaction and sends
    /// each statement itself.
    const SQL_STEP_IN_ONE_MESSAGE: bool = false;

    /// Runs an SQL step's `sql` and appends its history `row` in one
    /// transaction, on a connection outside any transaction. Where
    /// [`SQL_STEP_IN_ONE_MESSAGE`](Self::SQL_STEP_IN_ONE_MESSAGE) holds, the
    /// whole step is one message (`BEGIN`, the SQL, the `INSERT`, `COMMIT`):
    /// one round trip instead of four, with the row's `duration_ms`
    /// measured by the database. The default runs the SQL and
    /// [`record`](Self::record)s the row in a transaction, timing the SQL
    /// itself.
    ///
    /// `restore`, run after the SQL, puts the session back as it was
    /// before the step ([`session_restore`](Self::session_restore)).
    fn sql_step(
        &mut self,
        table: &TableName,
        sql: &str,
        row: &NewRow<'_>,
        restore: Option<&str>,
    ) -> Result<(), SqlStepError> {
        let started = std::time::Instant::now();
        self.transaction(|c| {
            c.batch_execute(&then_restore::<Self>(sql, restore))?;
            let duration_ms = millis(started.elapsed());
            c.record(
                table,
                &NewRow {
                    duration_ms,
                    ..row.clone()
                },
            )
        })
        .map_err(SqlStepError::RolledBack)
    }

    /// SQL that puts the session's state back as it is now (PostgreSQL:
    /// the `search_path`; MySQL: the current database), run after each
    /// step, so that a step's `SET search_path` or `USE` reaches neither
    /// the tool's own statements nor the next step. `None` (the default):
    /// nothing to restore.
    fn session_restore(&mut self) -> Result<Option<String>, Error> {
        Ok(None)
    }

    /// Whether the transaction a step opened is still open. The step's own
    /// SQL or code may have ended it (`COMMIT`, `ROLLBACK`), and then what
    /// it ran after that was committed statement by statement. Asked after
    /// a step in a transaction fails; default `true`, where every step is
    /// guarded by its in-progress mark instead (MySQL).
    fn step_transaction_open(&mut self) -> bool {
        true
    }

    /// Runs `f` in a transaction suited to a migration step, under the
    /// migration lock on `table` (`in_step_transaction` with `BEGIN`).
    fn step_transaction<T>(
        &mut self,
        table: &TableName,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _ = table;
        in_step_transaction(self, "BEGIN", f)
    }
}

/// The context of the [`Error::Database`] a step transaction's failed
/// `COMMIT` is reported with: that, and only that, is the step's own
/// failure at its end.
pub(crate) const COMMIT_FAILED: &str = "committing the step's transaction";

/// The context of the [`Error::Database`] a step transaction's failed
/// `begin` is reported with.
pub(crate) const BEGIN_FAILED: &str = "beginning a step's transaction";

/// Runs `f` in a transaction that `begin` opens, as diesel's
/// `Connection::transaction` does, but telling what failed: `begin`'s
/// error as is, a failed `COMMIT` under [`COMMIT_FAILED`], and `f`'s own
/// error kept when the rollback after it fails too (diesel would report
/// the rollback's instead). Inside the caller's transaction: diesel's
/// savepoint.
pub(crate) fn in_step_transaction<C: Backend, T>(
    conn: &mut C,
    begin: &str,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Error> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if in_transaction(conn) {
        return conn.transaction(f);
    }
    if let Err(e) = AnsiTransactionManager::begin_transaction_sql(conn, begin) {
        // A `begin` of several statements may have opened the transaction
        // before one failed (PostgreSQL's lock check): end it.
        let _ = conn.batch_execute("ROLLBACK");
        return Err(Error::db(BEGIN_FAILED)(e));
    }
    match f(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).map_err(Error::db(COMMIT_FAILED))?;
            Ok(value)
        }
        Err(e) => {
            match AnsiTransactionManager::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => {}
                Err(rollback) => {
                    tracing::warn!(target: "migrate", "rolling back the step's transaction failed too: {rollback}");
                }
            }
            Err(e)
        }
    }
}

/// What PostgreSQL's lock check (see `postgres::lock_check`) fails with, in
/// its message.
pub(crate) const LOCK_NOT_HELD: &str =
    "migrate: this server session does not hold the migration lock";

/// Whether writing a history row failed because the session writing it
/// does not hold the migration lock: PostgreSQL's guard (see
/// [`insert_history_rows`]) refused the row, the lock check failed, or one
/// of diesel's prepared statements, which live in one server session, was
/// met in another (named alike by another client, or gone). Each means
/// that the connection's statements do not all run on one server session:
/// a transaction pooler (PgBouncer with `pool_mode = transaction`) is
/// between. (A duplicate change number is reported as it is: with the
/// lock check before every step, it means a row inserted by hand.)
pub(crate) fn lock_not_held(failure: &diesel::result::Error, table: &TableName) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    let DieselError::DatabaseError(kind, info) = failure else {
        return false;
    };
    let message = info.message();
    message.contains(LOCK_NOT_HELD)
        || (matches!(kind, DatabaseErrorKind::NotNullViolation)
            && info.table_name() == Some(table.as_str())
            && info.column_name() == Some("duration_ms"))
        || (message.starts_with("prepared statement \"__diesel_stmt_")
            && (message.ends_with("\" does not exist") || message.ends_with("\" already exists")))
}

/// What [`Migrator`](crate::Migrator)'s entry points take: a connection of
/// one of the three backends, or (feature `r2d2`) a connection of an r2d2
/// pool as `pool.get()?` returns it, so that `run(&mut pool.get()?)`
/// compiles. Scripts receive the connection itself.
pub trait Connectable {
    /// The backend's connection.
    type Connection: Backend;
    /// The connection itself.
    fn connection(&mut self) -> &mut Self::Connection;
}

impl<C: Backend> Connectable for C {
    type Connection = C;

    fn connection(&mut self) -> &mut C {
        self
    }
}

#[cfg(feature = "r2d2")]
impl<C> Connectable for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>>
where
    C: Backend + diesel::r2d2::R2D2Connection,
{
    type Connection = C;

    fn connection(&mut self) -> &mut C {
        self
    }
}

/// How [`Backend::sql_step`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlStepError {
    /// The database refused the step's SQL or its history row, and rolled
    /// both back: nothing of the step was kept.
    #[error("the step was rolled back: {0}")]
    RolledBack(diesel::result::Error),
    /// As [`RolledBack`](Self::RolledBack), where the server said where in
    /// the step's SQL it failed: the offset, in characters, of the error in
    /// that SQL (PostgreSQL reports a position).
    #[error("the step was rolled back: {0}")]
    RolledBackAt(diesel::result::Error, usize),
    /// The step's SQL ended the transaction it was sent in (a `COMMIT`,
    /// `ROLLBACK`, `END` or `PREPARE TRANSACTION` in a migration), and its
    /// history row was not written. What it ran after that was committed
    /// statement by statement, and a `COMMIT` kept what it ran before: part
    /// of the step may be applied.
    #[error("the step's SQL ended its transaction")]
    EndedItsTransaction,
    /// The connection was lost before the database answered: the step and
    /// its history row were committed together or not at all, unless its
    /// SQL ended its transaction itself.
    #[error("the connection was lost before the database answered: {0}")]
    OutcomeUnknown(diesel::result::Error),
}

/// Whether `conn` is inside a transaction diesel opened (the caller's, or
/// ours).
pub(crate) fn in_transaction<C: Connection>(conn: &mut C) -> bool {
    use diesel::connection::TransactionManager;
    !matches!(
        C::TransactionManager::transaction_manager_status_mut(conn).transaction_depth(),
        Ok(None)
    )
}

/// Waits for `try_lock` to succeed, polling until `timeout`.
pub(crate) fn poll_lock(
    table: &TableName,
    timeout: Duration,
    mut try_lock: impl FnMut() -> Result<bool, Error>,
) -> Result<(), Error> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if try_lock()? {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::LockTimeout {
                table: table.to_string(),
                waited: start.elapsed(),
                hint: String::new(),
            });
        }
        tracing::debug!(target: "migrate", table = %table, "waiting for the migration lock");
        std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// `sql`, then `restore` ([`Backend::session_restore`]) in the same text,
/// on a line of its own after a `;` where the SQL's last statement lacks
/// one: a comment on the SQL's last line cannot take it in, and no empty
/// statement is made (MySQL refuses those).
pub(crate) fn then_restore<'s, C: Backend>(sql: &'s str, restore: Option<&str>) -> Cow<'s, str> {
    match restore {
        Some(restore) if migrate_core::sql::ends_unterminated(sql, C::DIALECT) => {
            format!("{sql}\n;\n{restore}").into()
        }
        Some(restore) => format!("{sql}\n{restore}").into(),
        None => sql.into(),
    }
}

/// A duration in whole milliseconds, as the history's `duration_ms` holds
/// it.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
