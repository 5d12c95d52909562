//! The history's SQL that every backend shares: its columns, its rows read
//! by position and written many at a time, and the state row. It knows
//! diesel's query machinery; it never decides what to read or write.

use diesel::Connection;

use migrate_core::{Fingerprint, RowSummary};

use super::Backend;
use crate::history::HistoryRow;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::history::NewRow;
use crate::{Error, TableName};

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
