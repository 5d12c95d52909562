//! SQLite: history in a table, lock on a file beside the database. It knows
//! SQLite's SQL and catalog; it never plans.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection, sql_query};

use crate::backend::schema::{ColumnSchema, Schema, TableSchema};
use crate::backend::{AppliedAt, Backend, poll_lock};
use crate::history::{HistoryRow, NewRow};
use crate::{Error, TableName};

#[derive(QueryableByName)]
struct DatabaseFile {
    #[diesel(sql_type = Text)]
    file: String,
}

/// The current time as `applied_at` keeps it: UTC, ISO 8601, milliseconds
/// (`2026-11-22T13:49:52.123Z`), as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ',
/// 'now')` writes it, from the same clock.
fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Two processes on one file are serialised by an exclusive `flock` on
/// `<database>-migrate.lock`, which the kernel releases when the process
/// ends, however it ends. (Locking the database file itself would not do:
/// closing another descriptor of it would drop SQLite's own POSIX locks.)
/// An in-memory database belongs to one connection and needs no lock.
impl Backend for SqliteConnection {
    const NAME: &'static str = "SQLite";
    const TRANSACTIONAL_DDL: bool = true;
    const DIALECT: migrate_core::sql::Dialect = migrate_core::sql::Dialect::Sqlite;
    const ENDS_FAILED_TRANSACTIONS: bool = true;
    type Lock = Option<File>;

    /// A connection with SQLite's default busy timeout of 0 fails at once
    /// with "database is locked" when another process writes; give it the
    /// lock timeout instead. A timeout the application set is kept.
    fn prepare(&mut self, lock_timeout: Duration) -> Result<(), Error> {
        #[derive(QueryableByName)]
        struct Timeout {
            #[diesel(sql_type = BigInt)]
            timeout: i64,
        }
        let current: Timeout = sql_query("PRAGMA busy_timeout")
            .get_result(self)
            .map_err(Error::db("reading the busy timeout"))?;
        if current.timeout == 0 {
            let ms = lock_timeout.as_millis().clamp(1, i32::MAX as u128);
            sql_query(format!("PRAGMA busy_timeout = {ms}"))
                .execute(self)
                .map_err(Error::db("setting the busy timeout"))?;
        }
        Ok(())
    }

    /// A table's columns (a view of that name has none).
    fn columns(&mut self, table: &TableName) -> Result<Vec<String>, Error> {
        let columns: Vec<crate::backend::Named> = sql_query(
            "SELECT name FROM pragma_table_info(?1)
             WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        )
        .bind::<Text, _>(table.as_str())
        .load(self)
        .map_err(Error::db(format!(
            "looking for the tracking table `{table}`"
        )))?;
        Ok(columns.into_iter().map(|c| c.name).collect())
    }

    fn create_table(&mut self, table: &TableName) -> Result<(), Error> {
        sql_query(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                change INTEGER PRIMARY KEY NOT NULL,
                version TEXT NOT NULL,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('code', 'sql')),
                direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
                executed BOOLEAN NOT NULL,
                applied_at TEXT NOT NULL,
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
                id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
                fingerprint TEXT NOT NULL,
                last_change INTEGER NOT NULL
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

    /// The row, if it was written at the history's last change: that
    /// notices a dropped history table, or one made again empty (by a run
    /// killed before it cleared the row, or by hand, without the
    /// triggers); the triggers that [`write_state`](Backend::write_state)
    /// installs notice every change inside the history.
    fn read_state(&mut self, table: &TableName) -> Option<String> {
        crate::backend::read_state_row(self, crate::backend::last_change_state_query::<Self>(table))
    }

    /// Before a fingerprint is recorded, makes sure the triggers that
    /// forget it are in place: `<table>_forget_state_on_insert`, `_update`
    /// and `_delete`, after each row the history gains, changes or loses,
    /// by this tool or by hand, empty the state table, and the next
    /// start-up reads the whole history. (`IF NOT EXISTS`: once they are
    /// there, the schema is not written again.)
    fn write_state(
        &mut self,
        table: &TableName,
        fingerprint: Option<&migrate_core::Fingerprint>,
    ) -> diesel::QueryResult<()> {
        if fingerprint.is_some() {
            let (history, state) = (table.quoted(), table.state().quoted());
            let triggers: String = ["insert", "update", "delete"]
                .iter()
                .map(|event| {
                    format!(
                        "CREATE TRIGGER IF NOT EXISTS \"{table}_forget_state_on_{event}\"
                         AFTER {event} ON {history} BEGIN DELETE FROM {state}; END;"
                    )
                })
                .collect();
            self.batch_execute(&triggers)?;
        }
        crate::backend::write_state_row(self, table, fingerprint)
    }

    fn summaries(
        &mut self,
        table: &TableName,
        each: &mut dyn FnMut(migrate_core::RowSummary<'_>),
    ) -> diesel::QueryResult<()> {
        crate::backend::load_summaries(
            self,
            &table.quoted(),
            "(direction = 'up') + 2 * executed + 4 * dirty",
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
            "SELECT change, version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty, {}
             FROM {} ORDER BY change",
            crate::backend::added_columns_select(added_columns, "NULL"),
            table.quoted()
        ),
        )
        .map_err(Error::db(format!("reading the tracking table `{table}`")))
    }

    /// Prepared afresh each time: every step's DDL changes the schema, and
    /// SQLite would prepare a kept statement again anyway.
    fn record(&mut self, table: &TableName, row: &NewRow<'_>) -> diesel::QueryResult<()> {
        let now = now();
        let rows = std::slice::from_ref(row);
        crate::backend::insert_history_rows(self, table, rows, AppliedAt::Bound(&now), false, None)
    }

    /// One multi-row `INSERT` per 500 rows.
    fn record_all(&mut self, table: &TableName, rows: &[NewRow<'_>]) -> diesel::QueryResult<()> {
        let now = now();
        crate::backend::insert_history_rows(self, table, rows, AppliedAt::Bound(&now), false, None)
    }

    fn finish(
        &mut self,
        table: &TableName,
        change: i64,
        duration_ms: i64,
    ) -> diesel::QueryResult<()> {
        sql_query(format!(
            "UPDATE {} SET dirty = FALSE, duration_ms = ?, applied_at = ? WHERE change = ?",
            table.quoted()
        ))
        .bind::<BigInt, _>(duration_ms)
        .bind::<Text, _>(now())
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn forget(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()> {
        sql_query(format!(
            "DELETE FROM {} WHERE change = ? AND dirty",
            table.quoted()
        ))
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn probe(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()> {
        sql_query(format!(
            "UPDATE {} SET duration_ms = -1 WHERE change = ? AND dirty",
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
            #[diesel(sql_type = BigInt)]
            not_null: i64,
            #[diesel(sql_type = Nullable<Text>)]
            dflt: Option<String>,
            #[diesel(sql_type = BigInt)]
            pk: i64,
        }
        #[derive(QueryableByName)]
        struct Index {
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = BigInt)]
            unique: i64,
            #[diesel(sql_type = Text)]
            origin: String,
        }
        #[derive(QueryableByName)]
        struct Fk {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = Text)]
            on_update: String,
            #[diesel(sql_type = Text)]
            on_delete: String,
            #[diesel(sql_type = Text)]
            target: String,
            #[diesel(sql_type = Text)]
            from_col: String,
            #[diesel(sql_type = Nullable<Text>)]
            to_col: Option<String>,
        }
        let err = |what: &str| Error::db(format!("reading the schema ({what})"));
        let tables: Vec<Name> = sql_query(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ? AND name <> ? ORDER BY name",
        )
        .bind::<Text, _>(exclude.as_str())
        .bind::<Text, _>(exclude.state().as_str())
        .load(self)
        .map_err(err("tables"))?;
        let mut schema = Schema::default();
        for Name { name: table } in tables {
            let mut t = TableSchema::default();
            let cols: Vec<Col> = sql_query(
                "SELECT name, lower(type) AS sql_type, \"notnull\" AS not_null, dflt_value AS dflt, pk FROM pragma_table_info(?) ORDER BY cid",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("columns"))?;
            let mut pk: Vec<(i64, String)> = Vec::new();
            for c in cols {
                if c.pk > 0 {
                    pk.push((c.pk, c.name.clone()));
                }
                t.columns.push(ColumnSchema {
                    // A primary key column is never NULL in practice,
                    // whatever SQLite's flag says for INTEGER PRIMARY KEY.
                    nullable: c.not_null == 0 && c.pk == 0,
                    name: c.name,
                    full_type: c.sql_type.clone(),
                    sql_type: c.sql_type,
                    default: c.dflt,
                });
            }
            pk.sort();
            t.primary_key = pk.into_iter().map(|(_, n)| n).collect();
            let indexes: Vec<Index> = sql_query(
                "SELECT name, \"unique\" AS \"unique\", origin FROM pragma_index_list(?)",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("indexes"))?;
            for index in indexes.into_iter().filter(|i| i.origin != "pk") {
                // An index created by CREATE INDEX keeps its statement: its
                // WHERE, DESC, collations and expressions included.
                let created: Vec<Name> = sql_query(
                    "SELECT sql AS name FROM sqlite_schema WHERE type = 'index' AND name = ? AND sql IS NOT NULL",
                )
                .bind::<Text, _>(&index.name)
                .load(self)
                .map_err(err("index statements"))?;
                if let Some(statement) = created.into_iter().next() {
                    t.indexes.insert(index.name, statement.name);
                    continue;
                }
                let cols: Vec<Name> =
                    sql_query("SELECT COALESCE(name, '<expression>') AS name FROM pragma_index_info(?) ORDER BY seqno")
                        .bind::<Text, _>(&index.name)
                        .load(self)
                        .map_err(err("index columns"))?;
                let cols: Vec<String> = cols.into_iter().map(|c| c.name).collect();
                let unique = if index.unique != 0 { "UNIQUE " } else { "" };
                t.indexes
                    .insert(index.name, format!("{unique}({})", cols.join(", ")));
            }
            let fks: Vec<Fk> = sql_query(
                "SELECT id, on_update, on_delete, \"table\" AS target, \"from\" AS from_col, \"to\" AS to_col FROM pragma_foreign_key_list(?) ORDER BY id, seq",
            )
            .bind::<Text, _>(&table)
            .load(self)
            .map_err(err("foreign keys"))?;
            type Grouped = (String, String, Vec<String>, Vec<String>);
            let mut grouped: BTreeMap<i64, Grouped> = BTreeMap::new();
            for fk in fks {
                let actions = format!("ON UPDATE {} ON DELETE {}", fk.on_update, fk.on_delete);
                let entry = grouped
                    .entry(fk.id)
                    .or_insert_with(|| (fk.target.clone(), actions, Vec::new(), Vec::new()));
                entry.2.push(fk.from_col);
                entry.3.push(fk.to_col.unwrap_or_default());
            }
            for (target, actions, from, to) in grouped.into_values() {
                t.constraints.insert(format!(
                    "FOREIGN KEY ({}) REFERENCES {target} ({}) {actions}",
                    from.join(", "),
                    to.join(", ")
                ));
            }
            schema.tables.insert(table, t);
        }
        Ok(schema)
    }

    fn strings(&mut self, sql: &str) -> diesel::QueryResult<Vec<String>> {
        crate::backend::load_strings(self, sql)
    }

    fn lock(&mut self, table: &TableName, timeout: Duration) -> Result<Option<File>, Error> {
        let db: DatabaseFile =
            sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .get_result(self)
                .map_err(Error::db("finding the database file"))?;
        if db.file.is_empty() {
            return Ok(None);
        }
        let path = PathBuf::from(format!("{}-migrate.lock", db.file));
        let lock_error = |what: &str, e: std::io::Error| Error::Lock {
            table: table.to_string(),
            message: format!("{what} `{}`: {e}", path.display()),
        };
        // Read-write, created if missing: readable and writable by every
        // user the umask allows, so that processes of other users can lock
        // it too. Where another user made it (root, say) and it is not
        // writable, read-only: `flock` needs no write access locally (on
        // NFS an exclusive lock does, which is why read-write comes first).
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).read(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o666);
        let file = match options.open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => OpenOptions::new()
                .read(true)
                .open(&path)
                .map_err(|e| lock_error("cannot open the lock file", e))?,
            Err(e) => return Err(lock_error("cannot create the lock file", e)),
        };
        poll_lock(table, timeout, || match file.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => Ok(false),
            Err(TryLockError::Error(e)) => Err(lock_error("cannot lock", e)),
        })?;
        Ok(Some(file))
    }

    fn unlock(&mut self, _: &TableName, lock: Option<File>) -> Result<(), Error> {
        if let Some(file) = lock {
            // Dropping the file would release it too; unlocking first makes
            // the release explicit and immediate.
            let _ = file.unlock();
        }
        Ok(())
    }

    /// diesel forgets its transaction when a statement fails and SQLite
    /// has none open; after a success it does not know, and does not pass
    /// on `sqlite3_get_autocommit`. SQLite refuses to begin a transaction
    /// inside another: if `BEGIN` succeeds, the step had ended its
    /// transaction. The one `BEGIN` opened stays open, for the executor's
    /// `ROLLBACK` (or `COMMIT`) to end.
    fn step_transaction_open(&mut self) -> bool {
        crate::backend::in_transaction(self) && self.batch_execute("BEGIN").is_err()
    }

    fn step_transaction<T>(
        &mut self,
        _: &TableName,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // Take the write lock up front, so that a concurrent writer makes us
        // wait (busy timeout) instead of failing mid-step. Inside the
        // caller's transaction (which SQLite cannot nest) the step takes a
        // savepoint instead.
        crate::backend::in_step_transaction(self, "BEGIN IMMEDIATE", f)
    }
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::Text;
    use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection, sql_query};

    use super::now;

    #[derive(QueryableByName)]
    struct Time {
        #[diesel(sql_type = Text)]
        t: String,
    }

    fn sqlite_now(conn: &mut SqliteConnection) -> String {
        let row: Time = sql_query("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now') AS t")
            .get_result(conn)
            .unwrap();
        row.t
    }

    /// `applied_at` is written from Rust, but must read exactly as the
    /// `strftime` it replaced wrote it: the same shape, from the same clock.
    #[test]
    fn the_time_is_written_as_sqlite_strftime_writes_it() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let before = sqlite_now(&mut conn);
        let ours = now();
        let after = sqlite_now(&mut conn);
        let shape = |t: &str| -> String {
            t.chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect()
        };
        assert_eq!(shape(&ours), "9999-99-99T99:99:99.999Z");
        assert_eq!(shape(&ours), shape(&before));
        // Texts of that shape order as the times do.
        assert!(before <= ours && ours <= after, "{before} {ours} {after}");
    }
}
