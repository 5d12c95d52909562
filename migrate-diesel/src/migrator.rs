//! The algorithm, written once for every backend: check without the lock,
//! lock only when something is pending, plan again under the lock, run each
//! step with its history row in one transaction, release the lock on every
//! path.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use migrate_core::{
    Action, AppVersion, Body, Direction, DowngradeAuthorization, Fingerprint, KnownScript, Origin,
    Plan, PlanOptions, Registry, Script, ScriptKind, ScriptRef, StartupPolicy, Step, Target,
    Version, WhenAhead, plan, registered, resolve_app_version, resolve_startup_policy,
};

use crate::backend::{Backend, SqlStepError, in_transaction};
use crate::history::{AppliedState, HistoryRow, NewRow, State as History};
use crate::report::{DryRun, Progress, Report, State, Status, StatusRow, StepReport};
use crate::{Error, StepError, TableName};

/// The default tracking table.
pub const DEFAULT_TABLE: &str = "migrate_history";

/// Plans and runs migrations at start-up, loopback4-migration's `migrate()`
/// made Rust-shaped.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// # mod migrate { pub use migrate_core::package_version; pub use migrate_diesel::Migrator; }
/// use diesel::{Connection, SqliteConnection};
/// use migrate::Migrator;
///
/// let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// let report = Migrator::new(migrate::package_version!())
///     .app_version("1.0.0")
///     .table("schema_history")
///     .run(&mut conn)
///     .unwrap();
/// assert!(report.steps.is_empty()); // no scripts in this doctest
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Migrator {
    package_version: &'static str,
    app_version: Option<String>,
    table: String,
    registered: bool,
    /// Shared with the registry, which does not copy them.
    scripts: Arc<[Script]>,
    options: PlanOptions,
    lock_timeout: Duration,
    atomic: bool,
    when_ahead: Option<WhenAhead>,
    authorize_downgrade_to: Option<String>,
    /// Whether SQL steps are read, before they run, for statements that
    /// end their transaction (only the executor's own tests turn it off,
    /// to reach the checks behind it).
    read_sql: bool,
    /// What the scripts and options above imply, derived once; every
    /// builder method that changes them starts a new one.
    derived: Arc<OnceLock<Arc<Derived>>>,
}

/// The registry, built at a migrator's first use; the planner's view of it
/// when something needs planning; and the settled fingerprint of the last
/// target asked for.
#[derive(Debug)]
struct Derived {
    registry: Registry,
    known: OnceLock<Vec<KnownScript>>,
    settled: Mutex<Option<(Version, Settled)>>,
    /// The connection type every script was found to accept.
    accepted: OnceLock<std::any::TypeId>,
}

/// What a database settled at a target holds: the fingerprint of this
/// build's scripts up to it, and the highest of them.
#[derive(Debug, Clone)]
struct Settled {
    fingerprint: Fingerprint,
    version: Option<Version>,
}

impl Migrator {
    /// A migrator for an application whose Cargo package version is
    /// `package_version`: pass `migrate::package_version!()`, which expands
    /// in the application's crate.
    pub fn new(package_version: &'static str) -> Migrator {
        Migrator {
            package_version,
            app_version: None,
            table: DEFAULT_TABLE.to_owned(),
            registered: true,
            scripts: Arc::new([]),
            options: PlanOptions::default(),
            lock_timeout: Duration::from_secs(120),
            atomic: false,
            when_ahead: None,
            authorize_downgrade_to: None,
            read_sql: true,
            derived: Arc::default(),
        }
    }

    /// Runs SQL steps without first reading them for statements that end
    /// their transaction in the connection's dialect: for the executor's
    /// tests of what happens when that reading misses one.
    #[doc(hidden)]
    pub fn __without_reading_sql(mut self) -> Migrator {
        self.read_sql = false;
        self
    }

    /// Forgets what was derived from the scripts and options.
    fn changed(mut self) -> Migrator {
        self.derived = Arc::default();
        self
    }

    /// Sets the application version explicitly; it wins over
    /// `APPLICATION_VERSION` and the package version.
    pub fn app_version(mut self, version: impl Into<String>) -> Migrator {
        self.app_version = Some(version.into());
        self
    }

    /// Sets the tracking table's name (default `migrate_history`). It must
    /// be a plain identifier.
    pub fn table(mut self, name: impl Into<String>) -> Migrator {
        self.table = name.into();
        self
    }

    /// Adds scripts listed by hand. A script also registered runs once.
    pub fn scripts(mut self, scripts: impl IntoIterator<Item = Script>) -> Migrator {
        self.scripts = self.scripts.iter().copied().chain(scripts).collect();
        self.changed()
    }

    /// Uses only the scripts listed by hand, ignoring `#[migration_script]`
    /// and `embed_sql!` registrations.
    pub fn only_listed_scripts(mut self) -> Migrator {
        self.registered = false;
        self.changed()
    }

    /// Runs pending scripts whose version is below the database version
    /// instead of refusing them.
    pub fn allow_out_of_order(mut self, allow: bool) -> Migrator {
        self.options.allow_out_of_order = allow;
        self.changed()
    }

    /// On a downgrade, records scripts without `down` as reverted without
    /// running anything (with a warning) instead of refusing the plan.
    pub fn skip_irreversible(mut self, skip: bool) -> Migrator {
        self.options.skip_irreversible = skip;
        self.changed()
    }

    /// How long to wait for another instance's migration lock (default 120 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Migrator {
        self.lock_timeout = timeout;
        self
    }

    /// Runs the whole plan in one transaction: all or nothing. Refused where
    /// DDL is not transactional, and for plans with non-transactional steps.
    pub fn atomic(mut self, atomic: bool) -> Migrator {
        self.atomic = atomic;
        self
    }

    /// What start-up does when scripts above the application version are
    /// applied (the database is ahead: an older release meets a newer
    /// database in every rolling deploy and every rollback) and no downgrade
    /// is authorized: [`WhenAhead::Tolerate`] starts, changes nothing and
    /// warns, naming the scripts ahead; [`WhenAhead::Refuse`] fails before
    /// touching anything ([`Error::DatabaseAhead`]). Default:
    /// `MIGRATE_WHEN_AHEAD`, else tolerate. Start-up never reverts a script
    /// without [`authorize_downgrade_to`](Self::authorize_downgrade_to).
    pub fn when_ahead(mut self, policy: WhenAhead) -> Migrator {
        self.when_ahead = Some(policy);
        self
    }

    /// Authorizes start-up to downgrade the database to `version`, once:
    /// when the application version is `version` (by semver precedence),
    /// start-up reverts the scripts applied above it, records the
    /// authorization with their `down` rows, and never honours it again. A
    /// build that does not have a script reverts it with the `down` SQL its
    /// history row recorded; a code script it does not have is refused,
    /// naming the build that can revert it. Default:
    /// `MIGRATE_AUTHORIZE_DOWNGRADE_TO`. To downgrade to the same version a
    /// second time, give a new authorization, such as `1.0.0+2` (build
    /// metadata names it without changing the version).
    pub fn authorize_downgrade_to(mut self, version: impl Into<String>) -> Migrator {
        self.authorize_downgrade_to = Some(version.into());
        self
    }

    /// Applies an environment's settings from `migrate.toml` or
    /// `database.json` ([`migrate::config::load`](migrate_core::config::load)): each one set there
    /// replaces this migrator's. The command line does this for every
    /// command; an application's start-up can do the same:
    ///
    /// ```no_run
    /// # #[cfg(feature = "sqlite")] {
    /// # mod migrate { pub use migrate_core::{config, package_version}; pub use migrate_diesel::Migrator; }
    /// use diesel::{Connection, SqliteConnection};
    /// use migrate::Migrator;
    /// use migrate::config::{self, Request};
    ///
    /// // migrate.toml (or database.json), the environment from MIGRATE_ENV
    /// let env = config::load(&Request::default()).unwrap();
    /// let mut conn = SqliteConnection::establish(env.url.expose()).unwrap();
    /// Migrator::new(migrate::package_version!())
    ///     .configure(&env.settings)
    ///     .run(&mut conn)
    ///     .unwrap();
    /// # }
    /// ```
    pub fn configure(mut self, settings: &migrate_core::config::Settings) -> Migrator {
        if let Some(t) = &settings.table {
            self = self.table(t.clone());
        }
        if let Some(v) = &settings.app_version {
            self = self.app_version(v.clone());
        }
        if let Some(b) = settings.allow_out_of_order {
            self = self.allow_out_of_order(b);
        }
        if let Some(b) = settings.atomic {
            self = self.atomic(b);
        }
        if let Some(b) = settings.skip_irreversible {
            self = self.skip_irreversible(b);
        }
        if let Some(policy) = settings.when_ahead {
            self = self.when_ahead(policy);
        }
        if let Some(v) = &settings.authorize_downgrade_to {
            self = self.authorize_downgrade_to(v.clone());
        }
        if let Some(t) = settings.lock_timeout {
            self = self.lock_timeout(t);
        }
        self
    }

    /// Migrates the database to the application version: the start-up call.
    ///
    /// It applies the pending scripts up to the application version, and
    /// never reverts anything unless a downgrade to exactly that version is
    /// authorized ([`authorize_downgrade_to`](Self::authorize_downgrade_to)).
    /// A database ahead of the application is tolerated or refused by
    /// [`when_ahead`](Self::when_ahead); applied scripts left above the
    /// application version, and scripts of this build above it, are logged
    /// as warnings and named in the [`Report`].
    ///
    /// When the database is settled at the application version (it holds
    /// exactly this build's scripts up to that version, with the same SQL),
    /// this reads one row: the fingerprint of the applied set kept in the
    /// state table `<table>_state`. Any other fingerprint, or none, and it
    /// reads the whole history and plans, as [`run_to`](Self::run_to) always
    /// does. Every change this tool makes to the history keeps that row
    /// true. On SQLite and PostgreSQL triggers on the tracking table empty
    /// the state table after any other change to the history too (by
    /// hand, say). On MySQL an added row, or a deleted last one, is noticed;
    /// after any other edit by hand there, delete the row.
    pub fn run<C: Backend>(&self, conn: &mut C) -> Result<Report, Error> {
        self.migrate(conn, None, &mut |_| {}, true)
    }

    /// Migrates the database to `target`, reading the whole history. With
    /// `None` it is start-up's move ([`run`](Self::run) without the one-row
    /// check); an explicit target is the caller's own decision, downgrades
    /// included (the command line's `up`, `down` and `redo`).
    pub fn run_to<C: Backend>(
        &self,
        conn: &mut C,
        target: Option<Target>,
    ) -> Result<Report, Error> {
        self.run_to_with(conn, target, &mut |_| {})
    }

    /// [`run_to`](Self::run_to), calling `progress` as each step starts and
    /// finishes (the command line prints a line per step from it).
    pub fn run_to_with<C: Backend>(
        &self,
        conn: &mut C,
        target: Option<Target>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report, Error> {
        self.migrate(conn, target, progress, false)
    }

    fn migrate<C: Backend>(
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

    /// The dry run: the steps `run` would take, with the SQL of SQL
    /// migrations. Changes nothing (not even the tracking table). It
    /// refuses where `run` would: a database ahead under
    /// [`WhenAhead::Refuse`], for one. When a step is marked in progress it
    /// first waits for the migration lock, in case another process is
    /// running that step right now (on SQLite that may create the lock's
    /// `<database>-migrate.lock` file), and refuses with [`Error::Dirty`] if
    /// the mark is still there or the lock cannot be had.
    pub fn plan<C: Backend>(&self, conn: &mut C) -> Result<DryRun, Error> {
        self.plan_to(conn, None)
    }

    /// The dry run towards `target` (`None`: start-up's move, see
    /// [`run_to`](Self::run_to)).
    pub fn plan_to<C: Backend>(
        &self,
        conn: &mut C,
        target: Option<Target>,
    ) -> Result<DryRun, Error> {
        self.refuse_atomic_without_transactional_ddl::<C>()?;
        let setup = self.prepare(conn)?;
        let mut history = read_history(conn, &setup.table)?;
        if !history.dirty.is_empty() {
            // Perhaps another process is running that step right now: wait
            // for its lock, then look again. Without the lock, the mark is
            // reported as it stands.
            match conn.lock(&setup.table, self.lock_timeout) {
                Ok(lock) => {
                    let again = read_history(conn, &setup.table);
                    conn.unlock(&setup.table, lock)?;
                    history = again?;
                }
                Err(e) => tracing::debug!(target: "migrate", "{e}"),
            }
        }
        history.refuse_dirty()?;
        let (aim, authorization) = setup.aim(target.as_ref(), &history);
        let authorization = authorization.map(ToString::to_string);
        let plan = plan(&aim, &history.scripts(), setup.known(), self.options)?;
        log_decisions(&setup, &history, &aim, &plan);
        if target.is_none() {
            setup.refuse_ahead(&history, &plan)?;
        }
        let scripts = setup.scripts();
        if self.read_sql {
            refuse_transaction_control::<C>(scripts, &plan, &setup.table)?;
        }
        let sql = plan
            .steps
            .iter()
            .map(|step| step_sql(scripts, step).map(str::to_owned))
            .collect();
        Ok(DryRun {
            app_version: setup.app,
            authorization: authorization.filter(|_| plan.reverts()),
            plan,
            sql,
        })
    }

    /// Every known and applied script: version, name, kind, applied at,
    /// state. Changes nothing.
    pub fn status<C: Backend>(&self, conn: &mut C) -> Result<Status, Error> {
        let setup = self.prepare(conn)?;
        let history = read_history(conn, &setup.table)?;
        let app = &setup.app.version;
        let recorded: BTreeMap<&Version, &AppliedState> = history
            .scripts
            .iter()
            .map(|a| (&a.script.version, a))
            .collect();
        let known = setup.known();
        let mut rows: Vec<StatusRow> = Vec::with_capacity(known.len());
        for k in known {
            let done = recorded.get(&k.version).copied();
            let state = match done.map(|a| &a.script) {
                Some(a) if a.reverted_without_running => State::RevertedKeptChanges,
                Some(a) if a.checksum.is_some() && a.checksum != k.checksum => {
                    State::ChecksumChanged
                }
                Some(_) if k.version > *app => State::Ahead,
                Some(_) => State::Applied,
                None if k.version <= *app => State::Pending,
                None => State::AboveAppVersion,
            };
            rows.push(StatusRow {
                version: k.version.clone(),
                name: k.name.clone(),
                kind: Some(k.kind),
                applied_at: done
                    .filter(|a| !a.script.reverted_without_running)
                    .map(|a| a.applied_at.clone()),
                state,
            });
        }
        let is_known = |v: &Version| known.binary_search_by(|k| k.version.cmp(v)).is_ok();
        for a in history
            .scripts
            .iter()
            .filter(|a| !is_known(&a.script.version))
        {
            let kept = a.script.reverted_without_running;
            rows.push(StatusRow {
                version: a.script.version.clone(),
                name: a.script.name.clone(),
                kind: ScriptKind::parse(&a.kind),
                applied_at: Some(a.applied_at.clone()).filter(|_| !kept),
                state: match (kept, a.script.version > *app) {
                    (true, _) => State::RevertedKeptChanges,
                    (false, true) => State::Ahead,
                    (false, false) => State::AppliedUnknown,
                },
            });
        }
        let dirty: Vec<(&HistoryRow, Version)> = history
            .dirty
            .iter()
            .filter_map(|row| Some((row, Version::parse(&row.version).ok()?)))
            .collect();
        // One pass, however many steps are marked (atomic mode marks each).
        let marked: BTreeSet<&Version> = dirty.iter().map(|(_, v)| v).collect();
        rows.retain(|r| !marked.contains(&r.version));
        for (row, version) in dirty {
            rows.push(StatusRow {
                version,
                name: row.name.clone(),
                kind: ScriptKind::parse(&row.kind),
                applied_at: Some(row.applied_at.clone()),
                state: State::InProgress,
            });
        }
        rows.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(Status {
            in_progress: history.dirty_error().map(|e| e.to_string()),
            database_version: history
                .applied()
                .next_back()
                .map(|a| a.script.version.clone()),
            app_version: setup.app,
            rows,
        })
    }

    /// The configured tracking-table name, not yet validated.
    pub(crate) fn table_name(&self) -> &str {
        &self.table
    }

    /// The scripts this migrator knows (registered and listed), in version
    /// order. Needs no database.
    pub fn known_scripts(&self) -> Result<Vec<Script>, Error> {
        Ok(self.registry()?.iter().map(|e| *e.script).collect())
    }

    /// Checks everything that needs no database: the table name, the
    /// application version and the scripts. The command line calls it before
    /// connecting, so that bad input changes nothing (not even by creating
    /// a SQLite file).
    pub fn validate(&self) -> Result<(), Error> {
        TableName::new(&self.table)?;
        self.resolved_app_version()?;
        self.startup_policy()?;
        self.registry()?;
        Ok(())
    }

    /// The start-up policy: the configured one, else the variables'.
    fn startup_policy(&self) -> Result<StartupPolicy, Error> {
        Ok(resolve_startup_policy(
            self.when_ahead,
            self.authorize_downgrade_to.as_deref(),
        )?)
    }

    /// The application version this migrator aims at: the configured one,
    /// else `APPLICATION_VERSION`, else the package version.
    pub fn resolved_app_version(&self) -> Result<AppVersion, Error> {
        Ok(resolve_app_version(
            self.app_version.as_deref(),
            self.package_version,
        )?)
    }

    /// Records an existing database as being at `version` without running
    /// anything: each known script at or below `version` gets a history row
    /// marked as not executed. For adopting the tool on a live database
    /// whose schema those scripts already describe.
    ///
    /// Refused when the tracking table already has rows, and when no known
    /// script is at or below `version`.
    pub fn baseline<C: Backend>(&self, conn: &mut C, version: &str) -> Result<Report, Error> {
        let started = Instant::now();
        let version = Version::parse(version).map_err(|source| Error::InvalidVersion {
            what: "baseline version",
            source,
        })?;
        let setup = self.prepare(conn)?;
        let scripts = setup.scripts();
        let steps: Vec<Step> = setup
            .known()
            .iter()
            .enumerate()
            .filter(|(_, k)| k.version <= version)
            .map(|(i, k)| Step {
                direction: Direction::Up,
                version: k.version.clone(),
                name: k.name.clone(),
                kind: k.kind,
                action: Action::RecordOnly,
                origin: Origin::Known(i),
            })
            .collect();
        if steps.is_empty() {
            return Err(Error::BaselineRefused {
                table: setup.table.to_string(),
                reason: format!(
                    "no script known to this build is at or below {version}, so there is nothing to record; `up` runs every script"
                ),
            });
        }
        let lock = self.lock_to_write(conn, &setup.table)?;
        let steps = under_lock(conn, &setup.table, lock, |conn| {
            let prepare = |c: &mut C| {
                c.create_table(&setup.table)?;
                unsettle(c, &setup.table)
            };
            // Where DDL is transactional, in a step's transaction: on
            // PostgreSQL that checks the lock first.
            if C::TRANSACTIONAL_DDL {
                conn.step_transaction(&setup.table, prepare)
            } else {
                prepare(conn)
            }
            .map_err(|e| lock_did_not_hold(e, &setup.table))?;
            let history = conn.read_history(&setup.table, true)?;
            if let Some(last) = history.last() {
                return Err(Error::BaselineRefused {
                    table: setup.table.to_string(),
                    reason: format!(
                        "it already holds {} row(s), the last for {} `{}`; baseline is only for a database this tool has never migrated",
                        history.len(),
                        last.version,
                        last.name
                    ),
                });
            }
            let mut run = Runner {
                table: &setup.table,
                scripts,
                next_change: 1,
                atomic: true,
                restore: None,
                authorized_by: None,
                progress: &mut |_| {},
            };
            let reports: Vec<StepReport> = conn.step_transaction(&setup.table, |c| {
                steps.iter().map(|s| run.step(c, s)).collect()
            })?;
            settle(conn, &setup.table);
            Ok(reports)
        })?;
        Ok(Report {
            app_version: setup.app,
            from: None,
            to: steps.last().map(|s| s.version.clone()),
            steps,
            locked: true,
            fast_path: false,
            total: started.elapsed(),
            ahead: Vec::new(),
            above_target: Vec::new(),
            authorization: None,
        })
    }

    /// Records the outcome of a step left in progress (see
    /// [`Error::Dirty`]) once the user has inspected and repaired the
    /// database: [`Resolution::Completed`] records it as done,
    /// [`Resolution::RolledBack`] removes the attempt. Returns the row.
    pub fn resolve<C: Backend>(
        &self,
        conn: &mut C,
        version: &str,
        resolution: Resolution,
    ) -> Result<HistoryRow, Error> {
        let wanted = Version::parse(version).map_err(|source| Error::InvalidVersion {
            what: "version to resolve",
            source,
        })?;
        let setup = self.prepare(conn)?;
        let lock = self.lock_to_write(conn, &setup.table)?;
        under_lock(conn, &setup.table, lock, |conn| {
            let history = read_history(conn, &setup.table)?;
            if !history.dirty.is_empty() {
                // A dirty mark implies a cleared state; clear it anyway, in
                // case the history was edited by hand.
                conn.create_table(&setup.table)?;
                unsettle(conn, &setup.table)?;
            }
            let nothing = |reason: String| Error::NothingToResolve {
                version: wanted.to_string(),
                table: setup.table.to_string(),
                reason,
            };
            let row = match history
                .dirty
                .iter()
                .find(|row| Version::parse(&row.version).ok().as_ref() == Some(&wanted))
            {
                Some(row) => row.clone(),
                None if history.dirty.is_empty() => {
                    return Err(nothing("no step is in progress".to_owned()));
                }
                None => {
                    let marked: Vec<String> = history
                        .dirty
                        .iter()
                        .map(|row| format!("{} `{}`", row.version, row.name))
                        .collect();
                    let (one, many) = ("the step in progress is", "the steps in progress are");
                    return Err(nothing(format!(
                        "{} {}",
                        if marked.len() == 1 { one } else { many },
                        marked.join(", ")
                    )));
                }
            };
            // In a step's transaction: on PostgreSQL that checks the lock.
            conn.step_transaction(&setup.table, |conn| {
                match resolution {
                    // A probe may have left -1 in the row.
                    Resolution::Completed => {
                        conn.finish(&setup.table, row.change, row.duration_ms.max(0))
                    }
                    Resolution::RolledBack => conn.forget(&setup.table, row.change),
                }
                .map_err(Error::db(format!("resolving change {}", row.change)))
            })?;
            tracing::info!(target: "migrate", "{} `{}` ({}) resolved as {resolution:?}", row.version, row.name, row.direction);
            settle(conn, &setup.table);
            Ok(row)
        })
    }

    /// Atomic mode on a backend whose DDL commits implicitly (MySQL) is
    /// refused before anything runs, whatever the plan holds: the server
    /// cannot honour it.
    fn refuse_atomic_without_transactional_ddl<C: Backend>(&self) -> Result<(), Error> {
        if self.atomic && !C::TRANSACTIONAL_DDL {
            return Err(Error::AtomicRefused {
                reason: format!(
                    "{} commits DDL implicitly, so a plan cannot be rolled back as a whole; run without atomic mode",
                    C::NAME
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn registry(&self) -> Result<Registry, Error> {
        Ok(match (self.registered, self.scripts.is_empty()) {
            (true, true) => registered()?,
            (true, false) => registered()?.with(self.scripts.iter().copied())?,
            (false, _) => Registry::shared(self.scripts.clone())?,
        })
    }

    /// The registry and its planner view, derived at the first use.
    fn derived(&self) -> Result<Arc<Derived>, Error> {
        if let Some(derived) = self.derived.get() {
            return Ok(derived.clone());
        }
        let derived = Arc::new(Derived {
            registry: self.registry()?,
            known: OnceLock::new(),
            settled: Mutex::new(None),
            accepted: OnceLock::new(),
        });
        // Another thread may have got there first; either result is the same.
        Ok(self.derived.get_or_init(|| derived).clone())
    }

    /// Takes the migration lock to change the database. Refused inside the
    /// caller's transaction where DDL commits implicitly (MySQL): what runs
    /// under the lock starts by creating the tracking table, which would
    /// commit the caller's work behind its back.
    fn lock_to_write<C: Backend>(&self, conn: &mut C, table: &TableName) -> Result<C::Lock, Error> {
        refuse_inside_transaction(conn, table)?;
        conn.lock(table, self.lock_timeout)
    }

    /// Writes the state row under the lock if the lock is free, without
    /// waiting; whether the lock was taken. Failures only mean the next
    /// start-up reads the whole history again.
    /// Never inside the caller's transaction (the state table may need
    /// creating, and DDL would commit it on MySQL).
    fn settle_when_free<C: Backend>(&self, conn: &mut C, table: &TableName) -> bool {
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

    /// Everything an entry point needs but the database.
    fn setup<C: Backend>(&self) -> Result<Setup, Error> {
        let table = TableName::new(&self.table)?;
        let app = resolve_app_version(self.app_version.as_deref(), self.package_version)?;
        let derived = self.derived()?;
        // A script written for another backend is refused before anything
        // runs (checked once per connection type).
        let connection = std::any::TypeId::of::<C>();
        if derived.accepted.get() != Some(&connection) {
            derived.registry.check_connection::<C>()?;
            let _ = derived.accepted.set(connection);
        }
        Ok(Setup {
            table,
            app,
            policy: self.startup_policy()?,
            options: self.options,
            derived,
        })
    }

    /// [`setup`](Self::setup), and the connection prepared.
    fn prepare<C: Backend>(&self, conn: &mut C) -> Result<Setup, Error> {
        let setup = self.setup::<C>()?;
        conn.prepare(self.lock_timeout)?;
        Ok(setup)
    }

    fn run_locked<C: Backend>(
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
            let prepare = |c: &mut C| {
                c.create_table(&setup.table)?;
                unsettle(c, &setup.table)
            };
            // Where DDL is transactional, in a step's transaction: on
            // PostgreSQL that checks the lock first.
            if C::TRANSACTIONAL_DDL {
                conn.step_transaction(&setup.table, prepare)
            } else {
                prepare(conn)
            }
            .map_err(|e| lock_did_not_hold(e, &setup.table))?;
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
struct Ran {
    /// The plan it ran.
    plan: Plan,
    /// Its steps.
    steps: Vec<StepReport>,
    /// The downgrade authorization it spent, as given.
    authorization: Option<String>,
}

/// How a step left in progress ended, as the user found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// All of its changes are in place: record it as done.
    Completed,
    /// None of its changes are in place: forget the attempt.
    RolledBack,
}

impl History {
    /// [`Error::Dirty`] for the first step marked in progress, naming the
    /// others.
    fn dirty_error(&self) -> Option<Error> {
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
    fn refuse_dirty(&self) -> Result<(), Error> {
        match self.dirty_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What every entry point needs: the validated table, the app version and
/// the scripts.
struct Setup {
    table: TableName,
    app: AppVersion,
    policy: StartupPolicy,
    options: PlanOptions,
    derived: Arc<Derived>,
}

impl Setup {
    /// The scripts as the planner sees them.
    fn known(&self) -> &[KnownScript] {
        self.derived
            .known
            .get_or_init(|| self.derived.registry.known())
    }

    /// The scripts, indexed like `known` (and so like `Step::known_index`).
    fn scripts(&self) -> &Registry {
        &self.derived.registry
    }

    /// The fingerprint a database settled at `target` records (see
    /// `migrate_core::settled`), computed once per target.
    fn settled(&self, target: &Version) -> Settled {
        let mut cache = self
            .derived
            .settled
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((version, settled)) = &*cache
            && version.as_semver() == target.as_semver()
        {
            return settled.clone();
        }
        let (fingerprint, version) = self.derived.registry.settled_at(target);
        let settled = Settled {
            fingerprint,
            version: version.cloned(),
        };
        *cache = Some((target.clone(), settled.clone()));
        settled
    }

    /// What a run aims at: the caller's `target`, or start-up's move. That
    /// is up to the application version, reverting nothing, unless a
    /// downgrade to exactly that version is authorized and the history has
    /// not recorded that authorization as spent: then the version itself,
    /// with the authorization to record.
    fn aim(
        &self,
        target: Option<&Target>,
        history: &History,
    ) -> (Target, Option<&DowngradeAuthorization>) {
        if let Some(target) = target {
            return (target.clone(), None);
        }
        let app = &self.app.version;
        match &self.policy.authorization {
            Some(a) if a.version == *app && !history.spent.contains_key(&a.id()) => {
                (Target::Version(app.clone()), Some(a))
            }
            _ => (Target::UpTo(app.clone()), None),
        }
    }

    /// [`Error::DatabaseAhead`] for a start-up plan that leaves scripts
    /// ahead, under the refuse policy.
    fn refuse_ahead(&self, history: &History, plan: &Plan) -> Result<(), Error> {
        if !plan.ahead.is_empty() && self.policy.when_ahead == WhenAhead::Refuse {
            return Err(Error::DatabaseAhead {
                app: self.app.clone(),
                ahead: plan.ahead.clone(),
                advice: self.revert_advice(history),
            });
        }
        Ok(())
    }

    /// Start-up's verdict on its plan: refused under the refuse policy when
    /// the database is ahead, else a warning, at the default level, for
    /// everything the plan leaves alone, saying where the application
    /// version came from.
    fn review_startup(&self, history: &History, plan: &Plan) -> Result<(), Error> {
        self.refuse_ahead(history, plan)?;
        if !plan.ahead.is_empty() {
            let app = &self.app;
            let authorization = match &self.policy.authorization {
                Some(a) if a.version != app.version => format!(
                    " {a} does not apply: it names {}, and the application is at {}.",
                    a.version, app.version
                ),
                Some(a) => match history.spent.get(&a.id()) {
                    Some(spent) => format!(
                        " {a} was spent at change {} ({}): an authorization is honoured once.",
                        spent.change, spent.at
                    ),
                    None => String::new(),
                },
                None => String::new(),
            };
            tracing::warn!(
                target: "migrate",
                "the database is ahead of the application: {} {} applied above the application version {} ({}); start-up leaves {} in place and changes nothing.{authorization} An older release in a rolling deploy needs nothing more; {}",
                ScriptRef::list(&plan.ahead),
                if plan.ahead.len() == 1 { "is" } else { "are" },
                app.version,
                app.source,
                if plan.ahead.len() == 1 { "it" } else { "them" },
                self.revert_advice(history)
            );
        }
        warn_above_app_version(self, &plan.above_target);
        Ok(())
    }

    /// How the scripts ahead can be reverted, for messages: offered only as
    /// far as it would work. When this build can plan the downgrade to the
    /// application version: `down --to`, or a start-up authorization (a
    /// name not used before, if the plain one is spent). When it cannot:
    /// why, and that a build which has the scripts must do it.
    fn revert_advice(&self, history: &History) -> String {
        let app = &self.app.version;
        let downgrade = Target::Version(app.clone());
        if let Err(e) = plan(&downgrade, &history.scripts(), self.known(), self.options) {
            return format!(
                "to revert, run `down --to {app}` with a build that can: this one cannot ({})",
                e.to_string().replace('\n', " ")
            );
        }
        // The first name, for this version, that no downgrade has spent.
        let semver = app.as_semver();
        let release = format!("{}.{}.{}", semver.major, semver.minor, semver.patch);
        let pre = if semver.pre.is_empty() {
            String::new()
        } else {
            format!("-{}", semver.pre)
        };
        let unspent = std::iter::once(format!("{release}{pre}"))
            .chain((2..).map(|n| format!("{release}{pre}+{n}")))
            .find(|name| !history.spent.contains_key(name))
            .expect("an unbounded list of names");
        format!(
            "to revert, run `down --to {app}` (this build can), or let start-up revert once with MIGRATE_AUTHORIZE_DOWNGRADE_TO={unspent}"
        )
    }

    /// This build's scripts above the application version.
    fn above_app_version(&self) -> Vec<ScriptRef> {
        self.derived
            .registry
            .above(&self.app.version)
            .map(|e| ScriptRef {
                version: e.version.clone(),
                name: e.script.name().to_owned(),
            })
            .collect()
    }
}

/// Warns, at the default level, about scripts of this build that start-up
/// does not run because they are above the application version.
fn warn_above_app_version(setup: &Setup, above: &[ScriptRef]) {
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

/// The SQL a step runs: an SQL migration's `up` or `down`, or the recorded
/// `down` SQL of a script this build does not have. `None` for code
/// scripts and for steps only recorded.
fn step_sql<'a>(scripts: &'a Registry, step: &'a Step) -> Option<&'a str> {
    if step.action != Action::Run {
        return None;
    }
    match &step.origin {
        Origin::Recorded { sql, .. } => Some(sql),
        Origin::Known(i) => match scripts[*i].body() {
            Body::Sql(sql) => Some(match step.direction {
                Direction::Up => sql.up,
                // The planner never asks to run a missing down.
                Direction::Down => sql.down.unwrap_or_default(),
            }),
            Body::Code(_) => None,
        },
    }
}

/// Refuses, before any step runs, an SQL step that runs in a transaction
/// and that the connection's dialect reads as ending it. The registry
/// refused what every dialect reads so; what only one does (a backslash
/// before a quote, a `#` comment: MySQL's) is known only now.
fn refuse_transaction_control<C: Backend>(
    scripts: &Registry,
    plan: &Plan,
    table: &TableName,
) -> Result<(), Error> {
    for step in &plan.steps {
        let (script, transactional) = match step.origin {
            Origin::Known(i) => (Some(&scripts[i]), scripts[i].transactional()),
            Origin::Recorded { transactional, .. } => (None, transactional),
        };
        let Some(sql) = step_sql(scripts, step).filter(|_| transactional) else {
            continue;
        };
        if let Some(statement) = migrate_core::sql::transaction_control(sql, C::DIALECT) {
            return Err(Error::Registry(
                migrate_core::RegistryError::TransactionControl {
                    version: step.version.to_string(),
                    name: step.name.clone(),
                    location: script
                        .map_or_else(|| format!("the history in `{table}`"), Script::location),
                    direction: match step.direction {
                        Direction::Up => "up",
                        Direction::Down => "down",
                    },
                    line: statement.line,
                    statement: format!("{} (as {} reads it)", statement.head(), C::NAME),
                },
            ));
        }
    }
    Ok(())
}

/// [`Error::InsideTransaction`] where DDL commits implicitly and the
/// caller has a transaction open.
pub(crate) fn refuse_inside_transaction<C: Backend>(
    conn: &mut C,
    table: &TableName,
) -> Result<(), Error> {
    if !C::TRANSACTIONAL_DDL && in_transaction(conn) {
        return Err(Error::InsideTransaction {
            table: table.to_string(),
            backend: C::NAME,
        });
    }
    Ok(())
}

/// Runs `f` holding the migration lock `lock`, and releases the lock on
/// every path: errors, and panics too. An error of `f` wins over a failed
/// release, which is then logged.
fn under_lock<C: Backend, T>(
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
fn unsettle<C: Backend>(conn: &mut C, table: &TableName) -> Result<(), Error> {
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
fn settle<C: Backend>(conn: &mut C, table: &TableName) {
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
fn applied_fingerprint<C: Backend>(
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
fn settled_by_rows<C: Backend>(
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

fn read_history<C: Backend>(conn: &mut C, table: &TableName) -> Result<History, Error> {
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

/// Runs single steps and writes their history rows.
struct Runner<'a> {
    table: &'a TableName,
    scripts: &'a Registry,
    next_change: i64,
    atomic: bool,
    /// What puts the session back after each step
    /// ([`Backend::session_restore`]).
    restore: Option<&'a str>,
    /// The downgrade authorization the `down` steps run under.
    authorized_by: Option<&'a str>,
    progress: &'a mut dyn FnMut(Progress<'_>),
}

impl<'a> Runner<'a> {
    fn check_atomic(&self, plan: &Plan) -> Result<(), Error> {
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

    fn fail(&self, step: &Step, transactional: bool, dirty: bool, source: StepError) -> Error {
        Error::StepFailed {
            direction: step.direction,
            version: step.version.clone(),
            name: step.name.clone(),
            transactional,
            atomic: self.atomic,
            dirty,
            source,
        }
    }

    /// Whether a step runs in a transaction of its own: its script's
    /// choice, as recorded with it for a script this build does not have.
    fn transactional(&self, step: &Step) -> bool {
        match step.origin {
            Origin::Known(i) => self.scripts[i].transactional(),
            Origin::Recorded { transactional, .. } => transactional,
        }
    }

    /// Runs the script's `up` or `down` (nothing for a record-only step).
    fn body<C: Backend>(&self, conn: &mut C, step: &Step) -> Result<(), StepError> {
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
    fn own_transaction_step<C: Backend>(
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
            SqlStepError::RolledBack(e) => {
                let record = matches!(&e, diesel::result::Error::DatabaseError(_, info)
                    if info.table_name() == Some(self.table.as_str()));
                let source = if crate::backend::lock_not_held(&e, self.table) {
                    StepError::LockNotHeld(e)
                } else if record {
                    StepError::Record(e)
                } else {
                    StepError::Sql(e)
                };
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
    fn mark_ended<C: Backend>(&mut self, conn: &mut C, step: &Step, took: Duration) -> Error {
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
    fn mark_all_ended<C: Backend>(&mut self, conn: &mut C, steps: &[Step]) -> Error {
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

    fn row<'s>(&self, step: &'s Step, duration: Duration, dirty: bool) -> NewRow<'s>
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

    fn finished(&mut self, step: &Step, duration: Duration) -> StepReport {
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
    fn step<C: Backend>(&mut self, conn: &mut C, step: &Step) -> Result<StepReport, Error> {
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
    fn record_error(&self, e: diesel::result::Error) -> StepError {
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
    fn unless_ended<C: Backend>(&self, conn: &mut C, step: &Step, error: Error) -> Error {
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
    fn ended<C: Backend>(&self, conn: &mut C, step: &Step) -> Error {
        reopen_for_rollback(conn);
        self.fail(step, true, false, StepError::EndedItsTransaction)
    }

    /// Runs the steps of a plan in the one transaction the caller opened
    /// (atomic mode), and appends their history rows together at the end:
    /// nothing commits before the whole plan, so the rows are the same, and
    /// the database prepares one `INSERT` per batch rather than one per
    /// step.
    fn atomic_steps<'s, C: Backend>(
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
    fn timed_body<C: Backend>(
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
    fn guarded_step<C: Backend>(&mut self, conn: &mut C, step: &Step) -> Result<StepReport, Error> {
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
    fn committed_implicitly<C: Backend>(&self, conn: &mut C, change: i64) -> bool {
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
fn commit_failure(source: diesel::result::Error) -> StepError {
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
fn reopen_for_rollback<C: Backend>(conn: &mut C) {
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
fn lock_did_not_hold(error: Error, table: &TableName) -> Error {
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

/// Logs, at debug level, what the planner decided for each script and why.
fn log_decisions(setup: &Setup, history: &History, target: &Target, plan: &Plan) {
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

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
