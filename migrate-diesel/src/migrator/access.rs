//! Locking and history access: taking and releasing the migration lock,
//! reading the history, and keeping the state row true. It never plans.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use migrate_core::{Direction, Fingerprint, Version};

use crate::backend::{Backend, in_transaction};
use crate::history::State as History;
use crate::{Error, TableName};

use super::runner::lock_did_not_hold;
use super::*;

impl Migrator {
    /// Takes the migration lock to change the database. Refused inside the
    /// caller's transaction where DDL commits implicitly (MySQL): what runs
    /// under the lock starts by creating the tracking table, which would
    /// commit the caller's work behind its back.
    pub(super) fn lock_to_write<C: Backend>(
        &self,
        conn: &mut C,
        table: &TableName,
    ) -> Result<C::Lock, Error> {
        refuse_inside_transaction(conn, table)?;
        conn.lock(table, self.lock_timeout)
    }

    /// Writes the state row under the lock if the lock is free, without
    /// waiting; whether the lock was taken. Failures only mean the next
    /// start-up reads the whole history again.
    /// Never inside the caller's transaction (the state table may need
    /// creating, and DDL would commit it on MySQL).
    pub(super) fn settle_when_free<C: Backend>(&self, conn: &mut C, table: &TableName) -> bool {
        if in_transaction(conn) {
            return false;
        }
        let Ok(lock) = conn.lock(table, Duration::ZERO) else {
            return false;
        };
        tracing::debug!(target: "migrate", table = %table, "migration lock taken to record the state row");
        let recorded = under_lock(conn, table, lock, |conn| {
            conn.create_table(table)?;
            unsettle(conn, table)?;
            settle(conn, table);
            Ok(())
        });
        if let Err(e) = recorded {
            tracing::warn!(target: "migrate", "{e}; the next start-up reads the whole history");
        }
        true
    }
}

impl History {
    /// [`Error::Dirty`] for the first step marked in progress, naming the
    /// others.
    pub(super) fn dirty_error(&self) -> Option<Error> {
        let (row, others) = self.dirty.split_first()?;
        Some(Error::Dirty {
            version: row.version.clone(),
            name: row.name.clone(),
            direction: row.direction.clone(),
            change: row.change,
            started: row.applied_at.clone(),
            others: others
                .iter()
                .map(|row| format!("{} `{}`", row.version, row.name))
                .collect(),
        })
    }

    /// Every run refuses while a step is marked in progress.
    pub(super) fn refuse_dirty(&self) -> Result<(), Error> {
        match self.dirty_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Runs `f` holding the migration lock `lock`, and releases the lock on
/// every path: errors, and panics too. An error of `f` wins over a failed
/// release, which is then logged.
pub(super) fn under_lock<C: Backend, T>(
    conn: &mut C,
    table: &TableName,
    lock: C::Lock,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Error> {
    let outcome = catch_unwind(AssertUnwindSafe(|| f(conn)));
    let released = conn.unlock(table, lock);
    tracing::debug!(target: "migrate", table = %table, "migration lock released");
    match outcome {
        Err(panic) => resume_unwind(panic),
        Ok(Err(e)) => {
            if let Err(unlock) = released {
                tracing::warn!(target: "migrate", "{unlock}");
            }
            Err(e)
        }
        Ok(Ok(done)) => released.map(|()| done),
    }
}

/// Forgets the recorded fingerprint before the history changes: from here
/// until [`settle`], start-ups read the whole history.
pub(super) fn unsettle<C: Backend>(conn: &mut C, table: &TableName) -> Result<(), Error> {
    let state = table.state();
    // A table of that name that is not ours (the user's, or another
    // migrator's tracking table) is refused, never emptied.
    let probe = format!(
        "SELECT fingerprint AS s FROM {} WHERE id = 1 AND last_change >= 0",
        C::quote(state.as_str())
    );
    conn.strings(&probe).map_err(Error::db(format!(
        "checking the state table `{state}`: a table of that name exists without this tool's columns (id, fingerprint, last_change); choose another tracking-table name with `table` (the state table is `<name>_state`)"
    )))?;
    conn.write_state(table, None)
        .map_err(Error::db(format!("clearing the state table `{state}`")))
}

/// Records the fingerprint of the applied set, read back under the lock. If
/// that fails the state stays cleared, which only costs the next start-up a
/// full read.
pub(super) fn settle<C: Backend>(conn: &mut C, table: &TableName) {
    // In a transaction of its own (a savepoint inside the caller's), so
    // that a failure here cannot abort the caller's transaction.
    let settled = conn.transaction(|conn| {
        let Some(fingerprint) = applied_fingerprint(conn, table)? else {
            return Ok(());
        };
        conn.write_state(table, Some(&fingerprint))
            .map_err(Error::db(format!(
                "writing the state table `{}`",
                table.state()
            )))
    });
    if let Err(e) = settled {
        tracing::warn!(target: "migrate", "{e}; the next start-up reads the whole history");
    }
}

/// The fingerprint of the applied set ([`Fingerprint::of`] of the planner's
/// view of the history), from the history's summaries: after a long run
/// this is read while the run's report is still held, and the full rows
/// (with each SQL migration's `down`) would double what the run needs.
/// `None` while a step is marked in progress, or for a history the full
/// check refuses.
pub(super) fn applied_fingerprint<C: Backend>(
    conn: &mut C,
    table: &TableName,
) -> Result<Option<Fingerprint>, Error> {
    // The last row of each version decides; only applied ones count.
    let mut last: BTreeMap<Version, migrate_core::Digest> = BTreeMap::new();
    let mut readable = true;
    conn.summaries(table, &mut |row| {
        // (A version that does not parse is the full check's to report.)
        let (false, true, Ok(version)) = (row.dirty, readable, Version::parse(row.version)) else {
            readable = false;
            return;
        };
        // Removed first: `insert` would keep the old key, and with it the
        // build metadata of an earlier row.
        last.remove(&version);
        if row.direction == Direction::Up {
            let digest = migrate_core::entry_digest(version.as_semver(), row.checksum);
            last.insert(version, digest);
        }
    })
    .map_err(Error::db(format!("reading the tracking table `{table}`")))?;
    Ok(readable.then(|| Fingerprint::of_digests(last.iter().map(|(v, d)| (v, *d)))))
}

/// Whether the database is settled at the application version, as
/// [`Registry::settled`](migrate_core::Registry::settled) reads the
/// history's rows: `None` when it is not, or when there is no history yet.
pub(super) fn settled_by_rows<C: Backend>(
    conn: &mut C,
    setup: &Setup,
) -> Result<Option<migrate_core::Settled>, Error> {
    // Inside the caller's transaction the table is looked for first: a
    // failed statement would abort that transaction on PostgreSQL.
    if in_transaction(conn) && !conn.table_exists(&setup.table)? {
        return Ok(None);
    }
    let mut check = setup.derived.registry.settled_check();
    match conn.summaries(&setup.table, &mut |row| check.row(row)) {
        Ok(()) => Ok(check.finish(&setup.app.version)),
        // No tracking table yet, or one the full check reads (and reports
        // on) as it always does.
        Err(e) => {
            tracing::debug!(target: "migrate", "{e}: planning from the whole history");
            Ok(None)
        }
    }
}

pub(super) fn read_history<C: Backend>(conn: &mut C, table: &TableName) -> Result<History, Error> {
    let columns = conn.columns(table)?;
    if !columns.is_empty() {
        let added = crate::backend::has_added_columns(&columns);
        let rows = conn.read_history(table, added).map_err(|e| match e {
            Error::Database { context, source } => Error::Database {
                context: format!(
                    "{context} (if that table belongs to another tool or was changed by hand, choose another name with `table`, or restore the columns docs/tracking-tables.md lists)"
                ),
                source,
            },
            e => e,
        })?;
        History::from_history(table, rows)
    } else {
        Ok(History::empty())
    }
}

/// Under the lock, before the first write: makes the tracking table (or
/// adds its newer columns) and clears the state row. Where DDL is
/// transactional, in a step's transaction: on PostgreSQL that checks the
/// lock first, and a pooler is named.
pub(super) fn prepare_table<C: Backend>(conn: &mut C, table: &TableName) -> Result<(), Error> {
    let prepare = |c: &mut C| {
        c.create_table(table)?;
        unsettle(c, table)
    };
    if C::TRANSACTIONAL_DDL {
        conn.step_transaction(table, prepare)
    } else {
        prepare(conn)
    }
    .map_err(|e| lock_did_not_hold(e, table))
}
