//! MySQL and MariaDB: history in an InnoDB table, a named `GET_LOCK` lock.
//! It knows MySQL's SQL and catalog; it never plans.
//!
//! DDL commits implicitly on these servers, so [`Backend::TRANSACTIONAL_DDL`]
//! is `false`: every step that may change the schema is marked in progress
//! before it runs (see [`Migrator::resolve`](crate::Migrator::resolve)), and
//! atomic mode is refused.

use std::time::Duration;

use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{MysqlConnection, QueryableByName, RunQueryDsl, sql_query};

use crate::backend::{Backend, poll_lock};
use crate::history::{HistoryRow, NewRow};
use crate::{Error, TableName};

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Nullable<BigInt>)]
    locked: Option<i64>,
}

/// The lock's name: `GET_LOCK` names are server-wide, so the name covers the
/// database as well as the table. A stable 64-bit FNV-1a hash keeps it well
/// under MySQL's 64-character limit whatever the database's name.
fn lock_name(database: &str, table: &TableName) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = database.bytes().chain([0]).chain(table.as_str().bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("migrate:{hash:016x}")
}

/// The lock is `GET_LOCK` on a name derived from the database and the table.
/// It belongs to the connection: released by `unlock` on every path, and by
/// the server when the connection closes (a crashed process).
impl Backend for MysqlConnection {
    const NAME: &'static str = "MySQL";
    const TRANSACTIONAL_DDL: bool = false;
    const DIALECT: migrate_core::sql::Dialect = migrate_core::sql::Dialect::MySql;
    type Lock = String;

    fn quote(name: &str) -> String {
        format!("`{name}`")
    }

    fn columns(&mut self, table: &TableName) -> Result<Vec<String>, Error> {
        let columns: Vec<crate::backend::Named> = sql_query(
            "SELECT CAST(column_name AS CHAR) AS name FROM information_schema.columns
             WHERE table_schema = DATABASE() AND BINARY table_name = ?",
        )
        .bind::<Text, _>(table.as_str())
        .load(self)
        .map_err(Error::db(format!(
            "looking for the tracking table `{table}`"
        )))?;
        Ok(columns.into_iter().map(|c| c.name).collect())
    }

    fn create_table(&mut self, table: &TableName) -> Result<(), Error> {
        // `change` is a reserved word in MySQL: always backquoted.
        sql_query(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                `change` BIGINT NOT NULL PRIMARY KEY,
                version TEXT NOT NULL,
                name TEXT NOT NULL,
                description TEXT NOT NULL,
                kind VARCHAR(8) NOT NULL CHECK (kind IN ('code', 'sql')),
                direction VARCHAR(8) NOT NULL CHECK (direction IN ('up', 'down')),
                executed BOOLEAN NOT NULL,
                applied_at DATETIME(3) NOT NULL,
                duration_ms BIGINT NOT NULL,
                checksum VARCHAR(64) NULL,
                dirty BOOLEAN NOT NULL DEFAULT FALSE,
                down_sql LONGTEXT NULL,
                authorized_by TEXT NULL
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
            table.backquoted()
        ))
        .execute(self)
        .map_err(Error::db(format!("creating the tracking table `{table}`")))?;
        crate::backend::add_missing_columns(self, table, ["LONGTEXT NULL", "TEXT NULL"])?;
        sql_query(format!(
            "CREATE TABLE IF NOT EXISTS {} (
                id INT NOT NULL PRIMARY KEY CHECK (id = 1),
                fingerprint VARCHAR(64) NOT NULL,
                last_change BIGINT NOT NULL
            ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4",
            table.state().backquoted()
        ))
        .execute(self)
        .map_err(Error::db(format!(
            "creating the state table `{}`",
            table.state()
        )))?;
        Ok(())
    }

    /// The row, if it was written at the history's last change: without
    /// triggers here (`CREATE TRIGGER` can need `SUPER` when binary logging
    /// is on), a row added, or the last one deleted, by hand is noticed this
    /// way, and a dropped history table makes the query fail; an edit
    /// inside the history is not noticed.
    fn read_state(&mut self, table: &TableName) -> Option<String> {
        crate::backend::read_state_row(self, crate::backend::last_change_state_query::<Self>(table))
    }

    fn summaries(
        &mut self,
        table: &TableName,
        each: &mut dyn FnMut(migrate_core::RowSummary<'_>),
    ) -> diesel::QueryResult<()> {
        crate::backend::load_summaries(
            self,
            &table.backquoted(),
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
            "SELECT `change`, version, name, description, kind, direction, executed,
                    CONCAT(LEFT(DATE_FORMAT(applied_at, '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z') AS applied_at,
                    duration_ms, checksum, dirty, {}
             FROM {} ORDER BY `change`",
            crate::backend::added_columns_select(added_columns, "CAST(NULL AS CHAR)"),
            table.backquoted()
        ),
        )
        .map_err(Error::db(format!("reading the tracking table `{table}`")))
    }

    fn record(&mut self, table: &TableName, row: &NewRow<'_>) -> diesel::QueryResult<()> {
        sql_query(format!(
            "INSERT INTO {} (`change`, version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty, down_sql, authorized_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(3), ?, ?, ?, ?, ?)",
            table.backquoted()
        ))
        .bind::<BigInt, _>(row.change)
        .bind::<Text, _>(&*row.version)
        .bind::<Text, _>(row.name)
        .bind::<Text, _>(row.description)
        .bind::<Text, _>(row.kind.as_str())
        .bind::<Text, _>(row.direction.as_str())
        .bind::<Bool, _>(row.executed)
        .bind::<BigInt, _>(row.duration_ms)
        .bind::<Nullable<Text>, _>(row.checksum)
        .bind::<Bool, _>(row.dirty)
        .bind::<Nullable<Text>, _>(row.down_sql.as_deref())
        .bind::<Nullable<Text>, _>(row.authorized_by)
        .execute(self)
        .map(drop)
    }

    fn finish(
        &mut self,
        table: &TableName,
        change: i64,
        duration_ms: i64,
    ) -> diesel::QueryResult<()> {
        sql_query(format!(
            "UPDATE {} SET dirty = FALSE, duration_ms = ?, applied_at = UTC_TIMESTAMP(3) WHERE `change` = ?",
            table.backquoted()
        ))
        .bind::<BigInt, _>(duration_ms)
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn forget(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()> {
        sql_query(format!(
            "DELETE FROM {} WHERE `change` = ? AND dirty",
            table.backquoted()
        ))
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    fn probe(&mut self, table: &TableName, change: i64) -> diesel::QueryResult<()> {
        sql_query(format!(
            "UPDATE {} SET duration_ms = -1 WHERE `change` = ? AND dirty",
            table.backquoted()
        ))
        .bind::<BigInt, _>(change)
        .execute(self)
        .map(drop)
    }

    /// The current database, as it is now.
    fn session_restore(&mut self) -> Result<Option<String>, Error> {
        let database: crate::backend::Named = sql_query("SELECT COALESCE(DATABASE(), '') AS name")
            .get_result(self)
            .map_err(Error::db("reading the current database's name"))?;
        Ok(Some(database.name)
            .filter(|name| !name.is_empty())
            .map(|name| format!("USE `{}`", name.replace('`', "``"))))
    }

    fn strings(&mut self, sql: &str) -> diesel::QueryResult<Vec<String>> {
        crate::backend::load_strings(self, sql)
    }

    fn lock(&mut self, table: &TableName, timeout: Duration) -> Result<String, Error> {
        let database: crate::backend::Named = sql_query("SELECT COALESCE(DATABASE(), '') AS name")
            .get_result(self)
            .map_err(Error::db("reading the current database's name"))?;
        let name = lock_name(&database.name, table);
        poll_lock(table, timeout, || {
            // 1: taken; 0: held by another connection; NULL: an error.
            let row: Locked = sql_query("SELECT CAST(GET_LOCK(?, 0) AS SIGNED) AS locked")
                .bind::<Text, _>(&name)
                .get_result(self)
                .map_err(Error::db(format!("taking the migration lock on `{table}`")))?;
            Ok(row.locked == Some(1))
        })?;
        Ok(name)
    }

    fn unlock(&mut self, table: &TableName, name: String) -> Result<(), Error> {
        // 1: released; 0 or NULL: this connection did not hold it, which
        // only a lost connection explains (the server released it then).
        let row: Locked = sql_query("SELECT CAST(RELEASE_LOCK(?) AS SIGNED) AS locked")
            .bind::<Text, _>(&name)
            .get_result(self)
            .map_err(Error::db(format!(
                "releasing the migration lock on `{table}`"
            )))?;
        if row.locked != Some(1) {
            tracing::warn!(target: "migrate", lock = %name, "the migration lock on `{table}` was no longer held");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_stable_short_and_differ_by_database_and_table() {
        let migrations = TableName::new("migrations").unwrap();
        let a = lock_name("app", &migrations);
        assert_eq!(a, lock_name("app", &migrations));
        assert_ne!(a, lock_name("other_app", &migrations));
        assert_ne!(a, lock_name("app", &TableName::new("other").unwrap()));
        // The separator keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(
            lock_name("ab", &TableName::new("c").unwrap()),
            lock_name("a", &TableName::new("bc").unwrap())
        );
        assert!(lock_name(&"d".repeat(64), &migrations).len() <= 64);
    }
}
