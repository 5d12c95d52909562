//! PostgreSQL: history in a table, a session-level advisory lock. It knows
//! PostgreSQL's SQL and catalog; it never plans.

mod statements;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl, sql_query};

use crate::backend::schema::{ColumnSchema, Schema, TableSchema};
use crate::backend::{AppliedAt, Backend, SqlStepError, poll_lock};
use crate::history::{HistoryRow, NewRow};
use crate::{Error, TableName};
use statements::{
    forget_state_trigger, lock_check, lock_key, null_change, one_message_step, text_literal,
};

/// The lock is `pg_advisory_lock` on a key derived from the table name. It
/// belongs to the session: released by `unlock` on every path, and by the
/// server when the connection closes (a crashed process).
impl Backend for PgConnection {
    const NAME: &'static str = "PostgreSQL";
    const TRANSACTIONAL_DDL: bool = true;
    const DIALECT: migrate_core::sql::Dialect = migrate_core::sql::Dialect::Postgres;
    type Lock = i64;

    /// The columns of the relation the name finds on the search path.
    fn columns(&mut self, table: &TableName) -> Result<Vec<String>, Error> {
        let columns: Vec<crate::backend::Named> = sql_query(
            "SELECT attname::text AS name FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
        )
        .bind::<Text, _>(table.quoted())
        .load(self)
        .map_err(Error::db(format!(
            "looking for the tracking table `{table}`"
        )))?;
        Ok(columns.into_iter().map(|c| c.name).collect())
    }

    fn create_table(&mut self, table: &TableName) -> Result<(), Error> {
        sql_query(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                change BIGINT PRIMARY KEY,
                version TEXT NOT NULL,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('code', 'sql')),
                direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
                executed BOOLEAN NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                duration_ms BIGINT NOT NULL,
                checksum TEXT,
                dirty BOOLEAN NOT NULL DEFAULT FALSE,
                down_sql TEXT,
                authorized_by TEXT
            )",
            table.quoted()
        ))
        .execute(self)
        .map_err(Error::db(format!("creating the tracking table `{table}`")))?;
        crate::backend::add_missing_columns(self, table, ["TEXT", "TEXT"])?;
        sql_query(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                fingerprint TEXT NOT NULL,
                last_change BIGINT NOT NULL,
                history OID
            )",
            table.state().quoted()
        ))
        .execute(self)
        .map_err(Error::db(format!(
            "creating the state table `{}`",
            table.state()
        )))?;
        Ok(())
    }

    /// One round trip, reading the state table alone: the trigger that
    /// [`write_state`](Backend::write_state) installs forgets the row on any
    /// change to the history, and the row names the history table it
    /// describes by its OID, which `to_regclass` (a catalog-cache lookup)
    /// compares with the table of that name now: a history table dropped,
    /// or dropped and made again (by a run killed before it cleared the
    /// row, or by hand, without the trigger), does not match. Inside the
    /// caller's transaction a failed statement (no state table yet, say)
    /// would abort it, so there it runs under a savepoint.
    fn read_state(&mut self, table: &TableName) -> Option<String> {
        use crate::backend::read_state_row;
        // At most one row: `id` is the primary key and must be 1.
        let sql = format!(
            "SELECT fingerprint AS s FROM {} WHERE history = to_regclass('{}')::oid",
            table.state().quoted(),
            table.quoted()
        );
        if !crate::backend::in_transaction(self) {
            return read_state_row(self, sql);
        }
        diesel::Connection::transaction(self, |c| {
            read_state_row(c, sql).ok_or(diesel::result::Error::NotFound)
        })
        .ok()
    }

    /// Before a fingerprint is recorded, makes sure the trigger that
    /// forgets it is in place (see `forget_state_trigger`); the row then
    /// names the history table it describes.
    fn write_state(
        &mut self,
        table: &TableName,
        fingerprint: Option<&migrate_core::Fingerprint>,
    ) -> diesel::QueryResult<()> {
        if fingerprint.is_some() {
            self.batch_execute(&forget_state_trigger(table))?;
        }
        crate::backend::write_state_row(self, table, fingerprint)?;
        if fingerprint.is_some() {
            self.batch_execute(&format!(
                "UPDATE {} SET history = to_regclass('{}')::oid WHERE id = 1",
                table.state().quoted(),
                table.quoted()
            ))?;
        }
        Ok(())
    }

    fn summaries(
        &mut self,
        table: &TableName,
        each: &mut dyn FnMut(migrate_core::RowSummary<'_>),
    ) -> diesel::QueryResult<()> {
        crate::backend::load_summaries(
            self,
            &table.quoted(),
            "(direction = 'up')::int + 2 * executed::int + 4 * dirty::int",
            each,
        )
    }

    fn read_history(
        &mut self,
        table: &TableName,
        added_columns: bool,
    ) -> Result<Vec<HistoryRow>, Error> {
        crate::backend::load_history(
            self,
            format!(
            "SELECT change, version, name, description, kind, direction, executed,
                    to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS applied_at,
                    duration_ms, checksum, dirty, {}
             FROM {} ORDER BY change",
            crate::backend::added_columns_select(added_columns, "NULL::text"),
            table.quoted()
        ),
        )
        .map_err(Error::db(format!("reading the tracking table `{table}`")))
    }

    /// Kept prepared: each step sends only its values, and the server
    /// neither parses nor plans the `INSERT` again.
    fn record(&mut self, table: &TableName, row: &NewRow<'_>) -> diesel::QueryResult<()> {
        crate::backend::insert_history_rows(
            self,
            table,
            std::slice::from_ref(row),
            AppliedAt::Sql("now()"),
            true,
            Some(lock_key(table)),
        )
    }

    /// The session's `search_path`, as it is now, set again only if a step
    /// changed it: inside the caller's transaction the value read may be
    /// the caller's `SET LOCAL`, which a session-level `set_config` would
    /// make outlast their transaction.
    fn session_restore(&mut self) -> Result<Option<String>, Error> {
        let path = crate::backend::load_strings(self, "SELECT current_setting('search_path') AS s")
            .map_err(Error::db("reading the session's search_path"))?;
        Ok(path.first().map(|path| {
            let path = text_literal(path);
            format!(
                "SELECT set_config('search_path', {path}, false) WHERE current_setting('search_path') <> {path}"
            )
        }))
    }

    /// Whether the step's transaction is still open, as diesel knows
    /// without asking: it reads the server's transaction status (libpq's)
    /// after every statement, and forgets its transaction when the server
    /// has none.
    fn step_transaction_open(&mut self) -> bool {
        crate::backend::in_transaction(self)
    }

    /// Begins with `lock_check`, in the message that sends `BEGIN`: a
    /// step's transaction that would run on a server session without the
    /// lock stops before anything runs. (Inside the caller's transaction,
    /// the history rows' own check stands.)
    fn step_transaction<T>(
        &mut self,
        table: &TableName,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let begin = format!("BEGIN;\n{}", lock_check(lock_key(table)));
        crate::backend::in_step_transaction(self, &begin, f).map_err(|e| match e {
            // The check failed in the transaction `BEGIN` opened.
            Error::Database { context, source }
                if context == crate::backend::BEGIN_FAILED
                    && crate::backend::lock_not_held(&source, table) =>
            {
                Error::LockNotHeld {
                    table: table.to_string(),
                    what: "a step's transaction began on a server session without it".to_owned(),
                }
            }
            e => e,
        })
    }

    const SQL_STEP_IN_ONE_MESSAGE: bool = true;

    /// One message, one round trip (see `one_message_step`). PostgreSQL
    /// runs a message's statements until one fails; the transaction block
    /// the message opened is then left failed, or, when `COMMIT` itself
    /// failed (a deferred constraint), already ended: a `ROLLBACK` ends it
    /// either way (its warning that no transaction is open goes nowhere:
    /// diesel discards notices). Then `migrate.committed` tells whether the
    /// step's SQL had committed part of it before the failure, and a `NULL`
    /// `change` whether it had ended our transaction: either way, what ran
    /// after that was committed on its own.
    fn sql_step(
        &mut self,
        table: &TableName,
        sql: &str,
        row: &NewRow<'_>,
        restore: Option<&str>,
    ) -> Result<(), SqlStepError> {
        use diesel::result::{DatabaseErrorKind, Error as DieselError};
        use std::sync::atomic::{AtomicU64, Ordering};
        // Names this message among every message of this process, and so of
        // its sessions: `migrate.committed` may hold an earlier one's.
        static MESSAGES: AtomicU64 = AtomicU64::new(0);
        let nonce = format!(
            "{}.{}",
            std::process::id(),
            MESSAGES.fetch_add(1, Ordering::Relaxed)
        );
        let message = one_message_step(table, sql, row, &nonce, restore);
        let Err(failure) = self.batch_execute(&message) else {
            return Ok(());
        };
        if let DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) = failure {
            // The server rolls back what it had not committed when the
            // connection goes, but it may have committed first.
            return Err(SqlStepError::OutcomeUnknown(failure));
        }
        if let Err(e) = self.batch_execute("ROLLBACK") {
            // The connection is lost, and the server rolls back with it.
            tracing::warn!(target: "migrate", "rolling back a failed step: {e}");
        }
        let committed = crate::backend::load_strings(
            self,
            "SELECT COALESCE(current_setting('migrate.committed', true), '') AS s",
        );
        match committed {
            Ok(values) if values.first() == Some(&nonce) => Err(SqlStepError::EndedItsTransaction),
            Ok(_) if null_change(&failure, table) => Err(SqlStepError::EndedItsTransaction),
            Ok(_) => Err(match position_in_step(&message, sql, &failure) {
                Some(at) => SqlStepError::RolledBackAt(failure, at),
                None => SqlStepError::RolledBack(failure),
            }),
            // Whether part of it committed cannot be told.
            Err(_) => Err(SqlStepError::OutcomeUnknown(failure)),
        }
    }

    /// One multi-row `INSERT` per 500 rows.
    fn record_all(&mut self, table: &TableName, rows: &[NewRow<'_>]) -> diesel::QueryResult<()> {
        crate::backend::insert_history_rows(
            self,
            table,
            rows,
            AppliedAt::Sql("now()"),
            false,
            Some(lock_key(table)),
        )
    }

    fn finish(
        &mut self,
        table: &TableName,
        change: i64,
        duration_ms: i64,
    ) -> diesel::QueryResult<()> {
        sql_query(format!(
            "UPDATE {} SET dirty = FALSE, duration_ms = $1, applied_at = now() WHERE change = $2",
            table.quoted()
        ))
        .bind::<BigInt, _>(duration_ms)
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn forget(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()> {
        sql_query(format!(
            "DELETE FROM {} WHERE change = $1 AND dirty",
            table.quoted()
        ))
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn probe(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()> {
        sql_query(format!(
            "UPDATE {} SET duration_ms = -1 WHERE change = $1 AND dirty",
            table.quoted()
        ))
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn schema(&mut self, exclude: &TableName) -> Result<Schema, Error> {
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = Text)]
            name: String,
        }
        #[derive(QueryableByName)]
        struct Col {
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = Text)]
            sql_type: String,
            #[diesel(sql_type = Text)]
            full_type: String,
            #[diesel(sql_type = Bool)]
            nullable: bool,
            #[diesel(sql_type = Nullable<Text>)]
            dflt: Option<String>,
        }
        #[derive(QueryableByName)]
        struct Def {
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = Text)]
            def: String,
        }
        let err = |what: &str| Error::db(format!("reading the schema ({what})"));
        let tables: Vec<Name> = sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> $1 AND table_name <> $2
             ORDER BY table_name",
        )
        .bind::<Text, _>(exclude.as_str())
        .bind::<Text, _>(exclude.state().as_str())
        .load(self)
        .map_err(err("tables"))?;
        let mut schema = Schema::default();
        for Name { name: table } in tables {
            let cols: Vec<Col> = sql_query(
                "SELECT c.column_name::text AS name, c.udt_name::text AS sql_type,
                        format_type(a.atttypid, a.atttypmod)
                          || CASE WHEN c.is_identity = 'YES' THEN ' identity' ELSE '' END
                          || CASE WHEN c.is_generated = 'ALWAYS' THEN ' generated' ELSE '' END AS full_type,
                        c.is_nullable = 'YES' AS nullable, c.column_default::text AS dflt
                 FROM information_schema.columns c
                 JOIN pg_attribute a
                   ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
                  AND a.attname = c.column_name
                 WHERE c.table_schema = current_schema() AND c.table_name = $1
                 ORDER BY c.ordinal_position",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("columns"))?;
            let pk: Vec<Name> = sql_query(
                "SELECT a.attname::text AS name FROM pg_index i
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                 WHERE i.indrelid = format('%I.%I', current_schema(), $1)::regclass AND i.indisprimary
                 ORDER BY array_position(i.indkey::int2[], a.attnum)",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("primary key"))?;
            let indexes: Vec<Def> = sql_query(
                "SELECT indexname::text AS name, indexdef AS def FROM pg_indexes
                 WHERE schemaname = current_schema() AND tablename = $1",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("indexes"))?;
            let constraints: Vec<Def> = sql_query(
                "SELECT conname::text AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
                 WHERE conrelid = format('%I.%I', current_schema(), $1)::regclass AND contype IN ('f', 'u', 'c', 'x')",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("constraints"))?;
            let t = TableSchema {
                columns: cols
                    .into_iter()
                    .map(|c| ColumnSchema {
                        name: c.name,
                        sql_type: c.sql_type,
                        full_type: c.full_type,
                        nullable: c.nullable,
                        default: c.dflt,
                    })
                    .collect(),
                primary_key: pk.into_iter().map(|n| n.name).collect(),
                indexes: indexes.into_iter().map(|i| (i.name, i.def)).collect(),
                constraints: constraints
                    .into_iter()
                    .map(|c| format!("{} {}", c.name, c.def))
                    .collect(),
            };
            schema.tables.insert(table, t);
        }
        Ok(schema)
    }

    fn strings(&mut self, sql: &str) -> diesel::QueryResult<Vec<String>> {
        crate::backend::load_strings(self, sql)
    }

    fn lock(&mut self, table: &TableName, timeout: Duration) -> Result<i64, Error> {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
        }
        let key = lock_key(table);
        let waited = poll_lock(table, timeout, || {
            let row: Locked = sql_query("SELECT pg_try_advisory_lock($1) AS locked")
                .bind::<BigInt, _>(key)
                .get_result(self)
                .map_err(Error::db(format!("taking the migration lock on `{table}`")))?;
            Ok(row.locked)
        });
        if let Err(Error::LockTimeout {
            table,
            waited,
            hint,
        }) = waited
        {
            // Behind a transaction pooler a server session keeps the lock a
            // client took and released on another one: name the holder.
            let holder: Vec<crate::backend::Named> = sql_query(
                "SELECT a.pid || ' (' || COALESCE(a.state, '?') || ')' AS name
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                   AND l.classid::bigint = (($1 >> 32) & 4294967295) AND l.objid::bigint = ($1 & 4294967295)",
            )
            .bind::<BigInt, _>(key)
            .load(self)
            .unwrap_or_default();
            let hint = match holder.first().map(|row| &row.name) {
                Some(holder) => format!(
                    "; it is held by server session {holder}: if no other migration runs, a transaction pooler (PgBouncer with pool_mode = transaction) left it there, since a client that took it released it on another session; end that session (`SELECT pg_terminate_backend(<pid>)`) and migrate through a direct connection, or a session-mode pool"
                ),
                None => hint,
            };
            return Err(Error::LockTimeout {
                table,
                waited,
                hint,
            });
        }
        waited?;
        // The next statement must find the lock in its session too: behind a
        // transaction pooler it may run on another server session, where
        // the lock is another's (and every history row this tool writes
        // checks it again, see `insert_history_rows`).
        let held: Locked = sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(key)
            .get_result(self)
            .map_err(Error::db(format!(
                "checking the migration lock on `{table}`"
            )))?;
        if !held.locked {
            let _ = self.unlock(table, key);
            return Err(Error::LockNotHeld {
                table: table.to_string(),
                what: "the statement after the one that took it ran on a server session without it"
                    .to_owned(),
            });
        }
        Ok(key)
    }

    fn unlock(&mut self, table: &TableName, key: i64) -> Result<(), Error> {
        #[derive(QueryableByName)]
        struct Released {
            #[diesel(sql_type = Bool)]
            released: bool,
        }
        let row: Released = sql_query("SELECT pg_advisory_unlock($1) AS released")
            .bind::<BigInt, _>(key)
            .get_result(self)
            .map_err(Error::db(format!(
                "releasing the migration lock on `{table}`"
            )))?;
        if !row.released {
            // The session that took it is not the one that released it.
            tracing::warn!(target: "migrate", "the migration lock on `{table}` was not held by the server session that released it: a transaction pooler (PgBouncer with pool_mode = transaction) is between, where a session lock does not hold, and the session that took it keeps it; migrate through a direct connection, or a session-mode pool");
        }
        Ok(())
    }
}

/// Where in `sql` PostgreSQL's error position falls: the position counts
/// characters from 1 in the whole `message`, which holds `sql` once, after
/// the statements that open the step.
fn position_in_step(message: &str, sql: &str, failure: &diesel::result::Error) -> Option<usize> {
    let diesel::result::Error::DatabaseError(_, info) = failure else {
        return None;
    };
    let position = usize::try_from(info.statement_position()?)
        .ok()?
        .checked_sub(1)?;
    let start = message[..message.find(sql)?].chars().count();
    position
        .checked_sub(start)
        .filter(|&at| at < sql.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_differ_by_table() {
        let a = lock_key(&TableName::new("migrations").unwrap());
        assert_eq!(a, lock_key(&TableName::new("migrations").unwrap()));
        assert_ne!(a, lock_key(&TableName::new("other").unwrap()));
    }
}
