//! Start-up's algorithm: the state row, then one read of the history, then
//! a plan; the lock only when something is to run. It decides; the runner
//! runs the steps, and the backends know the SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use migrate_core::{
    Action, Direction, DowngradeAuthorization, Fingerprint, Plan, ScriptRef, Step, Target, Version,
    plan,
};

use crate::backend::Backend;
use crate::history::State as History;
use crate::report::{Progress, Report, StepReport};
use crate::{Error, StepError};

use super::runner::*;
use super::*;

impl Migrator {
    pub(super) fn migrate<C: Backend>(
        &self,
        conn: &mut C,
        target: Option<Target>,
        progress: &mut dyn FnMut(Progress<'_>),
        fast: bool,
    ) -> Result<Report, Error> {
        let started = Instant::now();
        self.refuse_atomic_without_transactional_ddl::<C>()?;
        let setup = self.setup::<C>()?;
        let startup = target.is_none();

        // The fast path: one row says the database is settled at the
        // application version. From the settled set the plan is empty
        // whatever the options (the planner's property tests prove it),
        // and nothing is ahead, so it is not planned. It runs before the
        // connection is prepared (SQLite's busy timeout): a read that finds
        // the database busy fails, and the full check below, which waits,
        // takes over.
        if fast
            && startup
            && let settled = setup.settled(&setup.app.version)
            && conn.read_state(&setup.table).as_deref() == Some(settled.fingerprint.as_str())
        {
            tracing::debug!(target: "migrate", app_version = %setup.app.version, fingerprint = %settled.fingerprint, "the database is settled at the application version: nothing to do");
            let above_target = setup.above_app_version();
            warn_above_app_version(&setup, &above_target);
            return Ok(Report {
                app_version: setup.app,
                from: settled.version.clone(),
                to: settled.version,
                steps: Vec::new(),
                locked: false,
                fast_path: true,
                total: started.elapsed(),
                ahead: Vec::new(),
                above_target,
                authorization: None,
            });
        }

        // The full check, lean: read the history's rows once and tell
        // whether the database is settled, without planning (the property
        // tests in `history.rs` prove it agrees with the planner). It runs
        // before the connection is prepared, as the fast path does.
        if startup && let Some(settled) = settled_by_rows(conn, &setup)? {
            tracing::debug!(target: "migrate", app_version = %setup.app.version, "the database is settled at the application version: nothing to do");
            let above_target = setup.above_app_version();
            warn_above_app_version(&setup, &above_target);
            // The state row is missing (a database this tool migrated
            // before it kept one) or out of date: record it, if the lock
            // is free right now, so that the next start-up reads one row.
            // Not when scripts this build lacks are applied: this build's
            // fast path would never match it.
            let locked =
                fast && !settled.unknown_applied && self.settle_when_free(conn, &setup.table);
            return Ok(Report {
                app_version: setup.app,
                from: settled.version.clone(),
                to: settled.version,
                steps: Vec::new(),
                locked,
                fast_path: false,
                total: started.elapsed(),
                ahead: Vec::new(),
                above_target,
                authorization: None,
            });
        }

        conn.prepare(self.lock_timeout)?;
        // The common start-up: nothing pending, so no lock is taken. A step
        // marked in progress may be running in another process right now:
        // only under the lock does the mark mean that it stopped, and
        // `run_locked` refuses then.
        let history = read_history(conn, &setup.table)?;
        if history.dirty.is_empty() {
            let (aim, _) = setup.aim(target.as_ref(), &history);
            let first = plan(&aim, &history.scripts(), setup.known(), self.options)?;
            log_decisions(&setup, &history, &aim, &first);
            if startup {
                // Before the lock, and before anything is written.
                setup.refuse_ahead(&history, &first)?;
            }
            if first.is_empty() {
                if startup {
                    setup.review_startup(&history, &first)?;
                }
                // Settled, but the state row is missing (a database this
                // tool migrated before it kept one) or out of date: record
                // it, if the lock is free right now, so that the next
                // start-up reads one row.
                let locked = if fast
                    && startup
                    && Fingerprint::of(&history.scripts())
                        == setup.settled(&setup.app.version).fingerprint
                {
                    self.settle_when_free(conn, &setup.table)
                } else {
                    false
                };
                return Ok(Report {
                    app_version: setup.app,
                    from: first.from,
                    to: first.to,
                    steps: Vec::new(),
                    locked,
                    fast_path: false,
                    total: started.elapsed(),
                    ahead: first.ahead,
                    above_target: first.above_target,
                    authorization: None,
                });
            }
        }

        let lock = self.lock_to_write(conn, &setup.table)?;
        tracing::debug!(target: "migrate", table = %setup.table, "migration lock taken");
        let ran = under_lock(conn, &setup.table, lock, |conn| {
            let mut ran = self.run_locked(conn, &setup, target.as_ref(), progress)?;
            // Run, and reported: not held while the history is read back.
            ran.plan.steps = Vec::new();
            settle(conn, &setup.table);
            Ok(ran)
        })?;
        Ok(Report {
            app_version: setup.app,
            from: ran.plan.from,
            to: ran.plan.to,
            steps: ran.steps,
            locked: true,
            fast_path: false,
            total: started.elapsed(),
            ahead: ran.plan.ahead,
            above_target: ran.plan.above_target,
            authorization: ran.authorization,
        })
    }

    pub(super) fn run_locked<C: Backend>(
        &self,
        conn: &mut C,
        setup: &Setup,
        target: Option<&Target>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Ran, Error> {
        // Another instance may have migrated while we waited, or spent the
        // downgrade authorization: decide and plan again, before writing
        // anything (a refusal touches nothing).
        let history = read_history(conn, &setup.table)?;
        history.refuse_dirty()?;
        let (aim, authorization) = setup.aim(target, &history);
        let plan = plan(&aim, &history.scripts(), setup.known(), self.options)?;
        if target.is_none() {
            setup.review_startup(&history, &plan)?;
        }
        let scripts = setup.scripts();
        if self.read_sql {
            refuse_transaction_control::<C>(scripts, &plan, &setup.table)?;
        }
        // Atomic mode creates the table inside its transaction: a failed
        // atomic run leaves nothing at all behind.
        if !self.atomic {
            prepare_table(conn, &setup.table)?;
        }
        for warning in plan.warnings() {
            tracing::warn!(target: "migrate", "{warning}");
        }
        // Only a plan that reverts something spends the authorization.
        let authorization = authorization.filter(|_| plan.reverts());
        if let Some(authorization) = authorization {
            tracing::warn!(target: "migrate", "downgrading the database to {} as {authorization} allows; it is recorded with the steps, and once the database moves up again it is never honoured again", setup.app.version);
        }
        let authorized_by = authorization.map(DowngradeAuthorization::id);
        // The session as the steps find it: each step leaves it so.
        let restore = conn.session_restore()?;
        let mut run = Runner {
            table: &setup.table,
            scripts,
            next_change: history.next_change,
            atomic: self.atomic,
            restore: restore.as_deref(),
            authorized_by: authorized_by.as_deref(),
            progress,
        };
        let steps = if self.atomic {
            run.check_atomic(&plan)?;
            let ran = conn.step_transaction(&setup.table, |c| {
                c.create_table(&setup.table)?;
                unsettle(c, &setup.table)?;
                run.atomic_steps(c, &plan.steps)
            });
            match ran {
                // A step ended the one transaction: the steps before it may
                // be kept or not, and this one half-applied.
                // The steps before it ran in that transaction too: a
                // `COMMIT` kept them, a `ROLLBACK` undid them. Each is marked
                // in progress, for the user to resolve.
                Err(Error::StepFailed {
                    source: StepError::EndedItsTransaction,
                    version,
                    ..
                }) => {
                    let at = plan.steps.iter().position(|s| s.version == version);
                    return Err(match at {
                        Some(at) => run.mark_all_ended(conn, &plan.steps[..=at]),
                        None => Error::StepFailed {
                            direction: Direction::Up,
                            version,
                            name: String::new(),
                            transactional: true,
                            atomic: true,
                            dirty: false,
                            source: StepError::EndedItsTransaction,
                        },
                    });
                }
                ran => ran?,
            }
        } else {
            let mut reports = Vec::with_capacity(plan.steps.len());
            for step in &plan.steps {
                // A step the database may not roll back whole is marked in
                // progress first: one outside a transaction, and every step
                // where statements may commit implicitly (MySQL: DDL, and
                // more). The probe then tells a clean rollback apart.
                let transactional = run.transactional(step);
                let guarded =
                    step.action == Action::Run && (!transactional || !C::TRANSACTIONAL_DDL);
                let report = if guarded {
                    if !transactional {
                        tracing::warn!(target: "migrate", "{} `{}` runs outside a transaction", step.version, step.name);
                    }
                    run.guarded_step(conn, step)?
                } else {
                    run.own_transaction_step(conn, step)?
                };
                reports.push(report);
            }
            reports
        };
        Ok(Ran {
            steps,
            authorization: authorization.map(ToString::to_string),
            plan,
        })
    }
}

/// What a run under the lock did.
pub(super) struct Ran {
    /// The plan it ran.
    pub(super) plan: Plan,
    /// Its steps.
    pub(super) steps: Vec<StepReport>,
    /// The downgrade authorization it spent, as given.
    pub(super) authorization: Option<String>,
}

/// Warns, at the default level, about scripts of this build that start-up
/// does not run because they are above the application version.
pub(super) fn warn_above_app_version(setup: &Setup, above: &[ScriptRef]) {
    if above.is_empty() {
        return;
    }
    tracing::warn!(
        target: "migrate",
        "{} script(s) of this build are above the application version {} ({}) and do not run: {}; they run once the application version reaches them (bump the package version, or set APPLICATION_VERSION)",
        above.len(),
        setup.app.version,
        setup.app.source,
        ScriptRef::list(above)
    );
}

/// Logs, at debug level, what the planner decided for each script and why.
pub(super) fn log_decisions(setup: &Setup, history: &History, target: &Target, plan: &Plan) {
    if !tracing::enabled!(target: "migrate", tracing::Level::DEBUG) {
        return;
    }
    tracing::debug!(
        target: "migrate",
        "application {} (from {}); database at {}; target: {target}; {} known script(s), {} applied",
        setup.app.version,
        setup.app.source,
        plan.from.as_ref().map_or_else(|| "(empty)".to_owned(), ToString::to_string),
        setup.known().len(),
        history.applied().count()
    );
    let applied: BTreeSet<&Version> = history.applied().map(|a| &a.script.version).collect();
    let steps: BTreeMap<&Version, &Step> = plan.steps.iter().map(|s| (&s.version, s)).collect();
    let ahead: BTreeSet<&Version> = plan.ahead.iter().map(|a| &a.version).collect();
    for known in setup.known() {
        let decision = match steps.get(&known.version) {
            Some(step) if step.direction == Direction::Up && step.action == Action::RecordOnly => {
                "reverted without running, within the target: record as applied".to_owned()
            }
            Some(step) if step.direction == Direction::Up => {
                "not applied and within the target: run `up`".to_owned()
            }
            Some(step) if step.action == Action::RecordOnly => {
                "applied, above the target, no `down`: record as reverted".to_owned()
            }
            Some(_) => "applied and above the target: run `down`".to_owned(),
            None if ahead.contains(&known.version) => {
                format!("applied and above the target ({target}): left in place")
            }
            None if applied.contains(&known.version) => "applied: nothing to do".to_owned(),
            None => format!("not applied, outside the target ({target}): left alone"),
        };
        tracing::debug!(target: "migrate", "{} `{}` ({}): {decision}", known.version, known.name, known.kind);
    }
    let known = setup.known();
    for a in history.applied() {
        if known
            .binary_search_by(|k| k.version.cmp(&a.script.version))
            .is_err()
        {
            let decision = match steps.get(&a.script.version) {
                Some(step) if step.action == Action::Run => {
                    "not in this build: run the `down` SQL recorded with it"
                }
                Some(_) => "not in this build, no `down`: record as reverted",
                None => "applied but unknown to this build: left in place",
            };
            tracing::debug!(target: "migrate", "{} `{}`: {decision}", a.script.version, a.script.name);
        }
    }
    tracing::debug!(target: "migrate", "plan: {plan}");
}
