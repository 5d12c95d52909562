//! The plan runner: each step with its history row in one transaction (or
//! marked in progress first), atomic mode, and what a failure leaves. It
//! runs a plan it is given; it never plans.

use std::any::Any;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use migrate_core::{Action, Body, Direction, Origin, Plan, Registry, Script, Step};

use crate::backend::{Backend, SqlStepError, in_transaction, millis, then_restore};
use crate::history::NewRow;
use crate::report::{Progress, StepReport};
use crate::{Error, StepError, TableName};

use super::*;

/// Runs single steps and writes their history rows.
pub(super) struct Runner<'a> {
    pub(super) table: &'a TableName,
    pub(super) scripts: &'a Registry,
    pub(super) next_change: i64,
    pub(super) atomic: bool,
    /// What puts the session back after each step
    /// ([`Backend::session_restore`]).
    pub(super) restore: Option<&'a str>,
    /// The downgrade authorization the `down` steps run under.
    pub(super) authorized_by: Option<&'a str>,
    pub(super) progress: &'a mut dyn FnMut(Progress<'_>),
}

impl<'a> Runner<'a> {
    pub(super) fn check_atomic(&self, plan: &Plan) -> Result<(), Error> {
        let outside: Vec<String> = plan
            .steps
            .iter()
            .filter(|s| s.action == Action::Run && !self.transactional(s))
            .map(|s| format!("{} `{}`", s.version, s.name))
            .collect();
        if outside.is_empty() {
            Ok(())
        } else {
            Err(Error::AtomicRefused {
                reason: format!(
                    "{} must run outside a transaction; run without atomic mode",
                    outside.join(", ")
                ),
            })
        }
    }

    pub(super) fn fail(
        &self,
        step: &Step,
        transactional: bool,
        dirty: bool,
        source: StepError,
    ) -> Error {
        Error::StepFailed {
            direction: step.direction,
            version: step.version.clone(),
            name: step.name.to_string(),
            transactional,
            atomic: self.atomic,
            dirty,
            source,
        }
    }

    /// Whether a step runs in a transaction of its own: its script's
    /// choice, as recorded with it for a script this build does not have.
    pub(super) fn transactional(&self, step: &Step) -> bool {
        match step.origin {
            Origin::Known(i) => self.scripts[i].transactional(),
            Origin::Recorded { transactional, .. } => transactional,
        }
    }

    /// Runs the script's `up` or `down` (nothing for a record-only step).
    pub(super) fn body<C: Backend>(&self, conn: &mut C, step: &Step) -> Result<(), StepError> {
        if step.action != Action::Run {
            return Ok(());
        }
        tracing::info!(target: "migrate", "{} {} `{}`", step.direction, step.version, step.name);
        if let Some(sql) = step_sql(self.scripts, step) {
            // The session is put back in the same message, in the step's
            // transaction; outside one, after it (PostgreSQL runs the
            // statements of one message in a transaction of their own).
            return if self.transactional(step) {
                conn.batch_execute(&then_restore::<C>(sql, self.restore))
            } else {
                conn.batch_execute(sql).and_then(|()| match self.restore {
                    Some(restore) => conn.batch_execute(restore),
                    None => Ok(()),
                })
            }
            .map_err(StepError::Sql);
        }
        let Some(i) = step.known_index() else {
            unreachable!("a recorded step runs SQL");
        };
        let script = &self.scripts[i];
        let outcome = catch_unwind(AssertUnwindSafe(|| match step.direction {
            Direction::Up => script.run_up(conn),
            Direction::Down => script.run_down(conn),
        }));
        match outcome {
            Ok(Ok(())) => match self.restore {
                Some(restore) => conn.batch_execute(restore).map_err(StepError::Sql),
                None => Ok(()),
            },
            Ok(Err(e)) => Err(StepError::Script(e)),
            Err(panic) => Err(StepError::Panicked(panic_message(panic.as_ref()))),
        }
    }

    /// Runs a step in a transaction of its own, and appends its history
    /// row there. An SQL step goes to the database as one message where
    /// the backend sends one ([`Backend::sql_step`]), unless the caller has
    /// a transaction open: the step then runs under a savepoint in it, one
    /// statement at a time.
    pub(super) fn own_transaction_step<C: Backend>(
        &mut self,
        conn: &mut C,
        step: &Step,
    ) -> Result<StepReport, Error> {
        let sql = match step_sql(self.scripts, step) {
            Some(sql) if C::SQL_STEP_IN_ONE_MESSAGE && !in_transaction(conn) => sql,
            _ => {
                let started = Instant::now();
                return match conn.step_transaction(self.table, |c| self.step(c, step)) {
                    Err(Error::StepFailed {
                        source: StepError::EndedItsTransaction,
                        ..
                    }) => Err(self.mark_ended(conn, step, started.elapsed())),
                    // Its `COMMIT` failed (a deferred constraint, a full
                    // disk): it is this step's failure, and nothing was
                    // kept; unless the connection was lost, and with it the
                    // answer.
                    Err(Error::Database { context, source })
                        if context == crate::backend::COMMIT_FAILED =>
                    {
                        Err(self.fail(step, true, false, commit_failure(source)))
                    }
                    done => done,
                };
            }
        };
        let started = Instant::now();
        (self.progress)(Progress::Started(step));
        tracing::info!(target: "migrate", "{} {} `{}`", step.direction, step.version, step.name);
        // The database measures the step itself: no duration yet.
        let row = self.row(step, Duration::ZERO, false);
        let failure = match conn.sql_step(self.table, sql, &row, self.restore) {
            Ok(()) => return Ok(self.finished(step, started.elapsed())),
            Err(failure) => failure,
        };
        Err(match failure {
            SqlStepError::RolledBack(e) => self.fail(step, true, false, self.refused(e, None)),
            SqlStepError::RolledBackAt(e, at) => {
                let source = self.refused(e, Some(line_at(sql, at)));
                self.fail(step, true, false, source)
            }
            SqlStepError::EndedItsTransaction => self.mark_ended(conn, step, started.elapsed()),
            SqlStepError::OutcomeUnknown(e) => {
                self.fail(step, true, false, StepError::OutcomeUnknown(e))
            }
        })
    }

    /// A step whose own SQL or code ended the transaction it ran in: what
    /// it ran after that was committed statement by statement, and a
    /// `COMMIT` kept what it ran before. It may be half-applied, so it is
    /// marked in progress, as a step outside a transaction is, and every
    /// run refuses until someone resolves it.
    pub(super) fn mark_ended<C: Backend>(
        &mut self,
        conn: &mut C,
        step: &Step,
        took: Duration,
    ) -> Error {
        let marked = conn
            .record(self.table, &self.row(step, took, true))
            .map_err(Error::db(format!(
                "the SQL of {} `{}` ended its transaction, so it may be half-applied, and marking it in progress failed: it is NOT marked, so inspect the database and repair it before running again",
                step.version, step.name
            )));
        if let Err(e) = marked {
            return e;
        }
        self.next_change += 1;
        self.fail(step, true, true, StepError::EndedItsTransaction)
    }

    /// [`mark_ended`](Self::mark_ended) for an atomic run: the last of
    /// `steps` ended the one transaction, so each step that ran is marked
    /// in progress (the earlier ones were kept by a `COMMIT`, or undone by
    /// a `ROLLBACK`: only the user can tell). The error names the last.
    pub(super) fn mark_all_ended<C: Backend>(&mut self, conn: &mut C, steps: &[Step]) -> Error {
        let Some((last, before)) = steps.split_last() else {
            unreachable!("an atomic run fails at a step");
        };
        for step in before.iter().filter(|s| s.action == Action::Run) {
            let marked = conn
                .record(self.table, &self.row(step, Duration::ZERO, true))
                .map_err(Error::db(format!(
                    "{} `{}` ended the atomic run's transaction, so the steps before it may be kept or not, and marking {} `{}` in progress failed: it is NOT marked, so inspect the database and repair it before running again",
                    last.version, last.name, step.version, step.name
                )));
            if let Err(e) = marked {
                return e;
            }
            self.next_change += 1;
        }
        self.mark_ended(conn, last, Duration::ZERO)
    }

    pub(super) fn row<'s>(&self, step: &'s Step, duration: Duration, dirty: bool) -> NewRow<'s>
    where
        'a: 's,
    {
        let script: Option<&'a Script> = step.known_index().map(|i| &self.scripts[i]);
        // An SQL migration's `up` row records its `down` ("" for none), so
        // that a build without it can revert it.
        let down_sql = match (script, step.direction) {
            (Some(script), Direction::Up) => match script.body() {
                Body::Sql(sql) => Some(crate::history::recorded_down_sql(
                    sql.down,
                    script.transactional(),
                )),
                Body::Code(_) => None,
            },
            _ => None,
        };
        NewRow {
            change: self.next_change,
            version: script.map_or_else(
                || Cow::Owned(step.version.to_string()),
                |s| Cow::Borrowed(s.version()),
            ),
            name: &step.name,
            description: script.and_then(Script::description).unwrap_or_default(),
            kind: step.kind,
            direction: step.direction,
            executed: step.action == Action::Run,
            duration_ms: millis(duration),
            checksum: script.and_then(Script::checksum),
            dirty,
            down_sql,
            authorized_by: self
                .authorized_by
                .filter(|_| step.direction == Direction::Down),
        }
    }

    /// What the database's refusal of a SQL step was: not holding the lock,
    /// the history row, or the step's own SQL (at a line of it, when the
    /// server said where).
    fn refused(&self, e: diesel::result::Error, at: Option<(usize, String)>) -> StepError {
        let record = matches!(&e, diesel::result::Error::DatabaseError(_, info)
            if info.table_name() == Some(self.table.as_str()));
        if crate::backend::lock_not_held(&e, self.table) {
            StepError::LockNotHeld(e)
        } else if record {
            StepError::Record(e)
        } else if let Some((line, text)) = at {
            StepError::SqlAt {
                source: e,
                line,
                text,
            }
        } else {
            StepError::Sql(e)
        }
    }

    pub(super) fn finished(&mut self, step: &Step, duration: Duration) -> StepReport {
        self.next_change += 1;
        let report = StepReport {
            direction: step.direction,
            version: step.version.clone(),
            name: step.name.clone(),
            kind: step.kind,
            action: step.action,
            duration,
        };
        (self.progress)(Progress::Finished(&report));
        report
    }

    /// Runs one step (unless it is record-only) and appends its history row,
    /// on the transaction the caller opened for it. If the step's own SQL
    /// or code ended that transaction, nothing is recorded, and the error
    /// is [`StepError::EndedItsTransaction`] (with a transaction open
    /// again, for the caller's rollback to end).
    pub(super) fn step<C: Backend>(
        &mut self,
        conn: &mut C,
        step: &Step,
    ) -> Result<StepReport, Error> {
        let duration = match self.timed_body(conn, step, true) {
            Ok(duration) => duration,
            Err(e) => return Err(self.unless_ended(conn, step, e)),
        };
        let row = self.row(step, duration, false);
        // Written only inside the step's transaction, if the step left it
        // open.
        if !conn.step_transaction_open() {
            return Err(self.ended(conn, step));
        }
        match conn.record(self.table, &row) {
            Ok(()) => Ok(self.finished(step, duration)),
            Err(e) => Err(self.fail(step, true, false, self.record_error(e))),
        }
    }

    /// Why writing a step's history row failed.
    pub(super) fn record_error(&self, e: diesel::result::Error) -> StepError {
        if crate::backend::lock_not_held(&e, self.table) {
            StepError::LockNotHeld(e)
        } else {
            StepError::Record(e)
        }
    }

    /// `error`, or [`StepError::EndedItsTransaction`] when the step had
    /// ended its transaction before failing. Where the database ends a
    /// failed transaction itself ([`Backend::ENDS_FAILED_TRANSACTIONS`]),
    /// an SQL step that finds it gone was rolled back whole, and fails
    /// cleanly; code may have ended it, so it is marked.
    pub(super) fn unless_ended<C: Backend>(
        &self,
        conn: &mut C,
        step: &Step,
        error: Error,
    ) -> Error {
        if conn.step_transaction_open() {
            error
        } else if C::ENDS_FAILED_TRANSACTIONS && step_sql(self.scripts, step).is_some() {
            reopen_for_rollback(conn);
            error
        } else {
            self.ended(conn, step)
        }
    }

    /// [`StepError::EndedItsTransaction`], with a transaction open again
    /// (diesel's own, if it forgot it) for the caller's rollback to end.
    pub(super) fn ended<C: Backend>(&self, conn: &mut C, step: &Step) -> Error {
        reopen_for_rollback(conn);
        self.fail(step, true, false, StepError::EndedItsTransaction)
    }

    /// Runs the steps of a plan in the one transaction the caller opened
    /// (atomic mode), and appends their history rows together at the end:
    /// nothing commits before the whole plan, so the rows are the same, and
    /// the database prepares one `INSERT` per batch rather than one per
    /// step.
    pub(super) fn atomic_steps<'s, C: Backend>(
        &mut self,
        conn: &mut C,
        steps: &'s [Step],
    ) -> Result<Vec<StepReport>, Error>
    where
        'a: 's,
    {
        let mut rows = Vec::with_capacity(steps.len());
        let mut reports = Vec::with_capacity(steps.len());
        for step in steps {
            let duration = match self.timed_body(conn, step, true) {
                Ok(duration) => duration,
                Err(e) => return Err(self.unless_ended(conn, step, e)),
            };
            // Code may end the transaction and succeed: every step after it
            // would commit on its own, and the rows record nothing true.
            // (SQL cannot: its `COMMIT`s and `ROLLBACK`s are refused before
            // it runs.)
            if step.action == Action::Run
                && step_sql(self.scripts, step).is_none()
                && !conn.step_transaction_open()
            {
                return Err(self.ended(conn, step));
            }
            rows.push(self.row(step, duration, false));
            reports.push(self.finished(step, duration));
        }
        if let Some(last) = steps.last() {
            conn.record_all(self.table, &rows)
                .map_err(|e| self.fail(last, true, false, self.record_error(e)))?;
        }
        Ok(reports)
    }

    /// Reports the step started and runs its body; how long it took.
    pub(super) fn timed_body<C: Backend>(
        &mut self,
        conn: &mut C,
        step: &Step,
        transactional: bool,
    ) -> Result<Duration, Error> {
        let started = Instant::now();
        (self.progress)(Progress::Started(step));
        self.body(conn, step)
            .map_err(|e| self.fail(step, transactional, false, e))?;
        Ok(started.elapsed())
    }

    /// Runs a step that the database cannot roll back as a whole (it runs
    /// outside a transaction, or its DDL commits implicitly). Its row is
    /// written first, marked in progress, and committed; the mark is cleared
    /// when the step finishes. A crash or failure in between leaves the mark,
    /// which `status` shows and every run refuses until it is resolved.
    pub(super) fn guarded_step<C: Backend>(
        &mut self,
        conn: &mut C,
        step: &Step,
    ) -> Result<StepReport, Error> {
        let transactional = self.transactional(step);
        let started = Instant::now();
        (self.progress)(Progress::Started(step));
        let change = self.next_change;
        if let Err(e) = conn.record(self.table, &self.row(step, Duration::ZERO, true)) {
            return Err(match self.record_error(e) {
                // Nothing ran: its mark was refused.
                lost @ StepError::LockNotHeld(_) => self.fail(step, true, false, lost),
                StepError::Record(e) => Error::Database {
                    context: format!(
                        "marking {} `{}` in progress before it runs (nothing ran)",
                        step.version, step.name
                    ),
                    source: e,
                },
                other => self.fail(step, transactional, false, other),
            });
        }
        tracing::debug!(target: "migrate", change, "{} `{}` marked in progress", step.version, step.name);
        let table = self.table;
        let outcome: Result<(), StepError> = if transactional {
            let mut failure = None;
            let result = conn.step_transaction(table, |c| {
                c.probe(table, change)
                    .map_err(StepError::Record)
                    .and_then(|()| self.body(c, step))
                    .and_then(|()| {
                        c.finish(table, change, millis(started.elapsed()))
                            .map_err(StepError::Record)
                    })
                    .map_err(|e| {
                        failure = Some(e);
                        Error::Database {
                            context: "rolling back the failed step".to_owned(),
                            source: diesel::result::Error::RollbackTransaction,
                        }
                    })
            });
            match (result, failure) {
                (Ok(()), _) => Ok(()),
                (Err(_), Some(failure)) => Err(failure),
                (Err(e), None) => Err(StepError::Transaction(e.to_string())),
            }
        } else {
            self.body(conn, step).and_then(|()| {
                conn.finish(table, change, millis(started.elapsed()))
                    .map_err(StepError::Record)
            })
        };
        match outcome {
            Ok(()) => Ok(self.finished(step, started.elapsed())),
            Err(source) if transactional && !self.committed_implicitly(conn, change) => {
                // The rollback took everything back, the probe included:
                // nothing committed implicitly, so the mark can go.
                conn.forget(table, change).map_err(Error::db(format!(
                    "removing the in-progress mark of {} `{}` after it failed and rolled back whole (it left nothing behind: `resolve --version {} --rolled-back`)",
                    step.version, step.name, step.version
                )))?;
                Err(self.fail(step, true, false, source))
            }
            Err(source) => {
                // Outside a transaction, or DDL committed part of it: the
                // step may be half-applied and the mark stays.
                self.next_change += 1;
                Err(self.fail(step, transactional, true, source))
            }
        }
    }

    /// Whether the probe written inside a failed step's transaction survived
    /// its rollback: then part of the step committed implicitly. When the
    /// history cannot be read, assume it did: the mark stays.
    pub(super) fn committed_implicitly<C: Backend>(&self, conn: &mut C, change: i64) -> bool {
        match conn.read_history(self.table, true) {
            Ok(rows) => rows
                .iter()
                .find(|row| row.change == change)
                .is_none_or(|row| row.duration_ms < 0),
            Err(e) => {
                tracing::warn!(target: "migrate", "{e}");
                true
            }
        }
    }
}

/// Why a step's `COMMIT` failed: the database refused it (nothing was
/// kept), or the connection was lost before it answered.
pub(super) fn commit_failure(source: diesel::result::Error) -> StepError {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    match source {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => StepError::OutcomeUnknown(source),
        source => StepError::Transaction(
            Error::Database {
                context: crate::backend::COMMIT_FAILED.to_owned(),
                source,
            }
            .to_string(),
        ),
    }
}

/// Opens a transaction again (diesel's own, if it forgot it) after a step
/// found its own gone, for the caller's rollback to end.
pub(super) fn reopen_for_rollback<C: Backend>(conn: &mut C) {
    use diesel::connection::TransactionManager;
    if !in_transaction(conn)
        && let Err(e) = C::TransactionManager::begin_transaction(conn)
    {
        tracing::warn!(target: "migrate", "{e}");
    }
}

/// An error of this tool's own statements under the lock, told apart
/// when it shows that the lock did not hold: a unique violation (two
/// processes creating the tracking table at once, which the lock rules
/// out), or the evidence of `backend::lock_not_held`.
pub(super) fn lock_did_not_hold(error: Error, table: &TableName) -> Error {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    match error {
        Error::Database { context, source }
            if matches!(
                source,
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
            ) || crate::backend::lock_not_held(&source, table) =>
        {
            Error::LockNotHeld {
                table: table.to_string(),
                what: format!("{context}: {source}"),
            }
        }
        error => error,
    }
}

pub(super) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The line (from 1) of `sql` that holds the character at offset `at`, and
/// that line's text, trimmed and cut at 200 characters.
fn line_at(sql: &str, at: usize) -> (usize, String) {
    let before: String = sql.chars().take(at).collect();
    let line = before.matches('\n').count() + 1;
    let text = sql.lines().nth(line - 1).unwrap_or("").trim();
    let mut text: String = text.chars().take(200).collect();
    if text.len() < sql.lines().nth(line - 1).unwrap_or("").trim().len() {
        text.push('…');
    }
    (line, text)
}

#[cfg(test)]
mod tests {
    use super::line_at;

    #[test]
    fn an_offset_names_its_line_and_the_lines_text() {
        let sql = "CREATE TABLE a (x INT);\n  INSERT INTO nope VALUES (1);\nSELECT 1;";
        let at = sql.find("nope").unwrap();
        assert_eq!(
            line_at(sql, at),
            (2, "INSERT INTO nope VALUES (1);".to_owned())
        );
        assert_eq!(line_at(sql, 0), (1, "CREATE TABLE a (x INT);".to_owned()));
        let long = format!("SELECT '{}';", "é".repeat(300));
        assert!(line_at(&long, 5).1.ends_with('…'));
    }
}
