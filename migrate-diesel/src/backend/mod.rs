//! The narrow interface each database offers the executor, and one file
//! per database. Backends know SQL and their database; they never plan
//! (the algorithm lives once, in [`Migrator`](crate::Migrator)).

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::time::Duration;

use diesel::Connection;

use migrate_core::Fingerprint;

use crate::history::{HistoryRow, NewRow};
use crate::{Error, TableName};
use migrate_core::RowSummary;

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
            c.batch_execute(&crate::migrator::then_restore::<Self>(sql, restore))?;
            let duration_ms = crate::migrator::millis(started.elapsed());
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

/// The tracking table's columns added after its first release: a table
/// made before them reads them as `NULL`, and gains them (as nullable text)
/// the next time this tool writes to it, under the lock. Builds from before
/// them name their columns, so they read and write such a table as before.
pub(crate) const ADDED_COLUMNS: [&str; 2] = ["down_sql", "authorized_by"];

/// A row of one text column `name` (a column's, or a database's).
#[derive(diesel::QueryableByName)]
pub(crate) struct Named {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(crate) name: String,
}

/// Whether a tracking table with these `columns` has [`ADDED_COLUMNS`].
pub(crate) fn has_added_columns(columns: &[String]) -> bool {
    ADDED_COLUMNS
        .iter()
        .all(|added| columns.iter().any(|c| c.eq_ignore_ascii_case(added)))
}

/// The end of the history's select list: [`ADDED_COLUMNS`], or `null` in
/// their place for a table that predates them.
pub(crate) fn added_columns_select(added_columns: bool, null: &str) -> String {
    ADDED_COLUMNS
        .iter()
        .map(|c| {
            if added_columns {
                (*c).to_owned()
            } else {
                format!("{null} AS {c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the [`ADDED_COLUMNS`] a tracking table lacks, as nullable columns
/// of the given `types`, one per column.
pub(crate) fn add_missing_columns<C: Backend>(
    conn: &mut C,
    table: &TableName,
    types: [&str; ADDED_COLUMNS.len()],
) -> Result<(), Error> {
    let columns = conn.columns(table)?;
    for (added, text_type) in ADDED_COLUMNS.into_iter().zip(types) {
        if !columns.iter().any(|c| c.eq_ignore_ascii_case(added)) {
            conn.batch_execute(&format!(
                "ALTER TABLE {} ADD COLUMN {added} {text_type}",
                C::quote(table.as_str())
            ))
            .map_err(Error::db(format!(
                "adding the column `{added}` to the tracking table `{table}`"
            )))?;
            tracing::info!(target: "migrate", "the tracking table `{table}` gained the column `{added}`");
        }
    }
    Ok(())
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

/// How [`Backend::sql_step`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlStepError {
    /// The database refused the step's SQL or its history row, and rolled
    /// both back: nothing of the step was kept.
    #[error("the step was rolled back: {0}")]
    RolledBack(diesel::result::Error),
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

/// The state row's statement, (re)written for [`Backend::write_state`]:
/// the row is deleted, then with a fingerprint inserted again beside the
/// history's last change.
pub(crate) fn write_state_row<C: Backend>(
    conn: &mut C,
    table: &TableName,
    fingerprint: Option<&Fingerprint>,
) -> diesel::QueryResult<()> {
    let state = C::quote(table.state().as_str());
    conn.batch_execute(&format!("DELETE FROM {state} WHERE id = 1"))?;
    match fingerprint {
        // A fingerprint is hex digits only: nothing to escape.
        Some(f) => conn.batch_execute(&format!(
            "INSERT INTO {state} (id, fingerprint, last_change)
             SELECT 1, '{f}', COALESCE(MAX({change}), 0) FROM {history}",
            change = C::quote("change"),
            history = C::quote(table.as_str()),
        )),
        None => Ok(()),
    }
}

/// The start-up check's query where the query itself must notice a history
/// table dropped or made again (SQLite, MySQL): the row counts only if it
/// was written at the history's last change.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) fn last_change_state_query<C: Backend>(table: &TableName) -> String {
    format!(
        "SELECT fingerprint AS s FROM {state}
         WHERE id = 1 AND last_change = (SELECT COALESCE(MAX({change}), 0) FROM {history})",
        state = C::quote(table.state().as_str()),
        change = C::quote("change"),
        history = C::quote(table.as_str()),
    )
}

/// The state table's fingerprint, read by `sql` (one row, one column);
/// `None` on any error.
pub(crate) fn read_state_row<C>(conn: &mut C, sql: String) -> Option<String>
where
    C: Backend,
    for<'a> RawQuery<diesel::sql_types::Nullable<diesel::sql_types::Text>>:
        diesel::query_dsl::LoadQuery<'a, C, Option<String>>,
{
    use diesel::RunQueryDsl;
    let rows: Vec<Option<String>> =
        RawQuery::<diesel::sql_types::Nullable<diesel::sql_types::Text>>::new(sql)
            .load(conn)
            .ok()?;
    rows.into_iter().next().flatten()
}

/// How the history rows' `applied_at` is written.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Clone, Copy)]
pub(crate) enum AppliedAt<'a> {
    /// SQL the database evaluates (PostgreSQL's `now()`).
    #[cfg(feature = "postgres")]
    Sql(&'a str),
    /// The time, already written out, bound as text (SQLite). The database
    /// would read the same clock, but every step prepares its `INSERT`
    /// afresh, and a bound value is cheaper to prepare than a call.
    #[cfg(feature = "sqlite")]
    Bound(&'a str),
}

/// [`Backend::record_all`] as multi-row `INSERT`s of at most 500 rows (6500
/// bound values, under SQLite's and PostgreSQL's limits).
///
/// With `keep_prepared`, diesel keeps the statement prepared, keyed by its
/// text: only for one row at a time, whose text is the same for every call
/// on a table. PostgreSQL keeps such a statement valid across other
/// tables' DDL, so each step then sends only its values; SQLite would
/// prepare it again after every schema change, which costs more than
/// preparing it afresh.
///
/// With `lock_guard` (PostgreSQL's advisory-lock key), a row is written
/// only by a session that holds the migration lock: its `duration_ms` is
/// `NULL`, which the column refuses ([`lock_not_held`]), unless
/// `pg_try_advisory_xact_lock` on the key succeeds, as it does at once
/// for the session holding the lock and for no other.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn insert_history_rows<C>(
    conn: &mut C,
    table: &TableName,
    rows: &[NewRow<'_>],
    applied_at: AppliedAt<'_>,
    keep_prepared: bool,
    lock_guard: Option<i64>,
) -> diesel::QueryResult<()>
where
    C: Backend,
    for<'a> HistoryRows<'a>: diesel::query_builder::QueryFragment<C::Backend>,
{
    use diesel::RunQueryDsl;
    let head = format!(
        "INSERT INTO {} ({}, version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty, down_sql, authorized_by) VALUES ",
        C::quote(table.as_str()),
        C::quote("change"),
    );
    for chunk in rows.chunks(500) {
        HistoryRows {
            head: &head,
            rows: chunk,
            applied_at,
            keep_prepared,
            lock_guard,
        }
        .execute(conn)?;
    }
    Ok(())
}

/// One multi-row `INSERT` of history rows, every value bound.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct HistoryRows<'a> {
    head: &'a str,
    rows: &'a [NewRow<'a>],
    applied_at: AppliedAt<'a>,
    /// Whether diesel may keep the statement prepared (see
    /// [`insert_history_rows`]).
    keep_prepared: bool,
    /// The advisory-lock key a PostgreSQL session must hold to write the
    /// rows (see [`insert_history_rows`]).
    lock_guard: Option<i64>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<DB> diesel::query_builder::QueryFragment<DB> for HistoryRows<'_>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Bool>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    bool: diesel::serialize::ToSql<diesel::sql_types::Bool, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Nullable, Text};
        // Many rows make a text of their own: keeping it would only fill
        // the cache.
        if !self.keep_prepared {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(self.head);
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<BigInt, _>(&row.change)?;
            let (kind, direction) = (row.kind.as_str(), row.direction.as_str());
            for text in [&*row.version, row.name, row.description, kind, direction] {
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(text)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Bool, _>(&row.executed)?;
            out.push_sql(", ");
            match self.applied_at {
                #[cfg(feature = "postgres")]
                AppliedAt::Sql(sql) => out.push_sql(sql),
                #[cfg(feature = "sqlite")]
                AppliedAt::Bound(text) => out.push_bind_param::<Text, _>(text)?,
            }
            out.push_sql(", ");
            match &self.lock_guard {
                Some(key) => {
                    out.push_sql("CASE WHEN pg_try_advisory_xact_lock(");
                    out.push_bind_param::<BigInt, _>(key)?;
                    out.push_sql(") THEN ");
                    out.push_bind_param::<BigInt, _>(&row.duration_ms)?;
                    out.push_sql(" END");
                }
                None => out.push_bind_param::<BigInt, _>(&row.duration_ms)?,
            }
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&row.checksum)?;
            out.push_sql(", ");
            out.push_bind_param::<Bool, _>(&row.dirty)?;
            for text in [row.down_sql.as_deref(), row.authorized_by] {
                out.push_sql(", ");
                match text {
                    Some(text) => out.push_bind_param::<Text, _>(text)?,
                    None => out.push_bind_param::<Nullable<Text>, _>(&None::<&str>)?,
                }
            }
            out.push_sql(")");
        }
        Ok(())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl diesel::query_builder::QueryId for HistoryRows<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<C: Connection> diesel::RunQueryDsl<C> for HistoryRows<'_> {}

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

/// A row of one text column `s`.
#[derive(diesel::QueryableByName)]
pub(crate) struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    s: String,
}

/// One text column `s` of a query's rows, on any concrete connection.
pub(crate) fn load_strings<C>(conn: &mut C, sql: &str) -> diesel::QueryResult<Vec<String>>
where
    C: Connection,
    for<'a> diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'a, C, TextRow>,
{
    use diesel::RunQueryDsl;
    Ok(diesel::sql_query(sql)
        .load::<TextRow>(conn)?
        .into_iter()
        .map(|r| r.s)
        .collect())
}

/// A history row as [`Backend::summaries`] reads it: its version, its
/// flags ([`SUMMARY_UP`], [`SUMMARY_EXECUTED`], [`SUMMARY_DIRTY`]), and its
/// checksum. Three columns, not five: each column read costs about as much
/// as the database's own work for the row (see `docs/performance.md`).
type SummaryRow = (String, i32, Option<String>);

/// A [`SummaryRow`]'s flag: the row applied its script.
const SUMMARY_UP: i32 = 1;
/// A [`SummaryRow`]'s flag: the step ran (it was not only recorded).
const SUMMARY_EXECUTED: i32 = 2;
/// A [`SummaryRow`]'s flag: the step is marked in progress.
const SUMMARY_DIRTY: i32 = 4;

/// The column types of a [`SummaryRow`].
type SummaryTypes = (
    diesel::sql_types::Text,
    diesel::sql_types::Integer,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
);

/// [`Backend::summaries`] on any concrete connection: one statement, its
/// columns read by position (not looked up by name in every
/// row), its rows passed on as they come. `flags` is the backend's
/// expression of the flags, worth `1` for `up`, `2` for `executed` and `4`
/// for `dirty`.
pub(crate) fn load_summaries<C>(
    conn: &mut C,
    table: &str,
    flags: &str,
    each: &mut dyn FnMut(RowSummary<'_>),
) -> diesel::QueryResult<()>
where
    C: Backend,
    for<'a> RawQuery<SummaryTypes>: diesel::query_dsl::LoadQuery<'a, C, SummaryRow>,
{
    use diesel::RunQueryDsl;
    use diesel::connection::DefaultLoadingMode;
    let query = RawQuery::<SummaryTypes>::new(format!(
        "SELECT version, {flags}, checksum FROM {table} ORDER BY {}",
        C::quote("change")
    ));
    for row in query.load_iter::<SummaryRow, DefaultLoadingMode>(conn)? {
        let (version, flags, checksum) = row?;
        each(RowSummary {
            version: &version,
            direction: if flags & SUMMARY_UP != 0 {
                migrate_core::Direction::Up
            } else {
                migrate_core::Direction::Down
            },
            executed: flags & SUMMARY_EXECUTED != 0,
            dirty: flags & SUMMARY_DIRTY != 0,
            checksum: checksum.as_deref(),
        });
    }
    Ok(())
}

/// [`Backend::read_history`] on any concrete connection: `sql` selects a
/// [`HistoryRow`]'s columns in its fields' order. Read by position: diesel
/// looks a column up by name in every row otherwise, which cost more than
/// the database's work at 1000 rows.
pub(crate) fn load_history<C>(conn: &mut C, sql: String) -> diesel::QueryResult<Vec<HistoryRow>>
where
    C: Backend,
    for<'a> RawQuery<crate::history::HistoryTypes>: diesel::query_dsl::LoadQuery<'a, C, HistoryRow>,
{
    use diesel::RunQueryDsl;
    RawQuery::new(sql).load(conn)
}

/// Raw SQL whose columns are read as `ST`: by position for a tuple type
/// (`sql_query` reads them by name, a lookup per column and row), by name
/// for `Untyped`. Never kept prepared, as `sql_query`: a named prepared
/// statement does not survive a pooler in transaction mode (PgBouncer),
/// and start-up prepares each statement once anyway.
pub(crate) struct RawQuery<ST>(String, std::marker::PhantomData<ST>);

impl<ST> RawQuery<ST> {
    pub(crate) fn new(sql: String) -> RawQuery<ST> {
        RawQuery(sql, std::marker::PhantomData)
    }
}

impl<DB: diesel::backend::Backend, ST> diesel::query_builder::QueryFragment<DB> for RawQuery<ST> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql(&self.0);
        Ok(())
    }
}

/// No static id (and never cached).
impl<ST> diesel::query_builder::QueryId for RawQuery<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: diesel::sql_types::SqlType> diesel::query_builder::Query for RawQuery<ST> {
    type SqlType = ST;
}

impl<C: Connection, ST> diesel::RunQueryDsl<C> for RawQuery<ST> {}
