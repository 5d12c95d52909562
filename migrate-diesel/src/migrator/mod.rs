//! The public `Migrator`: its configuration and entry points. The
//! algorithm, written once for every backend, is in its parts: `setup`
//! (before the database), `startup` (check, plan, lock), `runner` (steps
//! and failures), `access` (lock and history), `repair` (baseline, resolve).

mod access;
mod repair;
mod runner;
mod setup;
mod startup;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use migrate_core::{
    AppVersion, Fingerprint, KnownScript, PlanOptions, Registry, Script, ScriptKind, Target,
    Version, WhenAhead, plan, registered, resolve_app_version,
};

use crate::backend::{Backend, Connectable};
use crate::history::{AppliedState, HistoryRow};
use crate::report::{DryRun, Progress, Report, State, Status, StatusRow};
use crate::{Error, TableName};

use access::*;
pub(crate) use setup::refuse_inside_transaction;
use setup::*;
use startup::*;

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
    pub fn run<T: Connectable>(&self, conn: &mut T) -> Result<Report, Error> {
        let conn = conn.connection();
        self.migrate(conn, None, &mut |_| {}, true)
    }

    /// Migrates the database to `target`, reading the whole history. With
    /// `None` it is start-up's move ([`run`](Self::run) without the one-row
    /// check); an explicit target is the caller's own decision, downgrades
    /// included (the command line's `up`, `down` and `redo`).
    pub fn run_to<T: Connectable>(
        &self,
        conn: &mut T,
        target: Option<Target>,
    ) -> Result<Report, Error> {
        let conn = conn.connection();
        self.run_to_with(conn, target, &mut |_| {})
    }

    /// [`run_to`](Self::run_to), calling `progress` as each step starts and
    /// finishes (the command line prints a line per step from it).
    pub fn run_to_with<T: Connectable>(
        &self,
        conn: &mut T,
        target: Option<Target>,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Report, Error> {
        let conn = conn.connection();
        self.migrate(conn, target, progress, false)
    }

    /// The dry run: the steps `run` would take, with the SQL of SQL
    /// migrations. Changes nothing (not even the tracking table). It
    /// refuses where `run` would: a database ahead under
    /// [`WhenAhead::Refuse`], for one. When a step is marked in progress it
    /// first waits for the migration lock, in case another process is
    /// running that step right now (on SQLite that may create the lock's
    /// `<database>-migrate.lock` file), and refuses with [`Error::Dirty`] if
    /// the mark is still there or the lock cannot be had.
    pub fn plan<T: Connectable>(&self, conn: &mut T) -> Result<DryRun, Error> {
        let conn = conn.connection();
        self.plan_to(conn, None)
    }

    /// The dry run towards `target` (`None`: start-up's move, see
    /// [`run_to`](Self::run_to)).
    pub fn plan_to<T: Connectable>(
        &self,
        conn: &mut T,
        target: Option<Target>,
    ) -> Result<DryRun, Error> {
        let conn = conn.connection();
        self.refuse_atomic_without_transactional_ddl::<T::Connection>()?;
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
            refuse_transaction_control::<T::Connection>(scripts, &plan, &setup.table)?;
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
    pub fn status<T: Connectable>(&self, conn: &mut T) -> Result<Status, Error> {
        let conn = conn.connection();
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
                Some(a)
                    if a.checksum.is_some() && a.checksum.as_deref() != k.checksum.as_deref() =>
                {
                    State::ChecksumChanged
                }
                Some(_) if k.version > *app => State::Ahead,
                Some(_) => State::Applied,
                None if k.version <= *app => State::Pending,
                None => State::AboveAppVersion,
            };
            rows.push(StatusRow {
                version: k.version.clone(),
                name: k.name.to_string(),
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
        let diesel_history = diesel_history(conn)?;
        Ok(Status {
            diesel_history,
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

    /// The application version this migrator aims at: the configured one,
    /// else `APPLICATION_VERSION`, else the package version.
    pub fn resolved_app_version(&self) -> Result<AppVersion, Error> {
        Ok(resolve_app_version(
            self.app_version.as_deref(),
            self.package_version,
        )?)
    }

    pub(crate) fn registry(&self) -> Result<Registry, Error> {
        Ok(match (self.registered, self.scripts.is_empty()) {
            (true, true) => registered()?,
            (true, false) => registered()?.with(self.scripts.iter().copied())?,
            (false, _) => Registry::shared(self.scripts.clone())?,
        })
    }
}

/// How a step left in progress ended, as the user found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// All of its changes are in place: record it as done.
    Completed,
    /// None of its changes are in place: forget the attempt.
    RolledBack,
}

/// The diesel_migrations history below this tool's, if the database has one
/// with rows: its count and latest version.
fn diesel_history<C: Backend>(conn: &mut C) -> Result<Option<(usize, String)>, Error> {
    let table = TableName::new(crate::DIESEL_TABLE)?;
    if !conn.table_exists(&table)? {
        return Ok(None);
    }
    let versions = conn
        .strings(&format!(
            "SELECT version AS s FROM {} ORDER BY version",
            C::quote(table.as_str())
        ))
        .map_err(Error::db(format!("reading `{table}`")))?;
    Ok(versions
        .last()
        .map(|latest| (versions.len(), latest.clone())))
}
