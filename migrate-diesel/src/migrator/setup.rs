//! What every entry point needs before it touches the database: the table,
//! the application version, the registry and the policy, and the reviews
//! of a plan. It reads no history and writes nothing.

use std::sync::{Arc, Mutex, OnceLock};

use migrate_core::{
    Action, AppVersion, Body, Direction, DowngradeAuthorization, KnownScript, Origin, Plan,
    PlanOptions, Registry, Script, ScriptRef, StartupPolicy, Step, Target, Version, WhenAhead,
    plan, resolve_app_version, resolve_startup_policy,
};

use crate::backend::{Backend, in_transaction};
use crate::history::State as History;
use crate::{Error, TableName};

use super::*;

impl Migrator {
    /// Atomic mode on a backend whose DDL commits implicitly (MySQL) is
    /// refused before anything runs, whatever the plan holds: the server
    /// cannot honour it.
    pub(super) fn refuse_atomic_without_transactional_ddl<C: Backend>(&self) -> Result<(), Error> {
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

    /// The start-up policy: the configured one, else the variables'.
    pub(super) fn startup_policy(&self) -> Result<StartupPolicy, Error> {
        Ok(resolve_startup_policy(
            self.when_ahead,
            self.authorize_downgrade_to.as_deref(),
        )?)
    }

    /// The registry and its planner view, derived at the first use.
    pub(super) fn derived(&self) -> Result<Arc<Derived>, Error> {
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

    /// Everything an entry point needs but the database.
    pub(super) fn setup<C: Backend>(&self) -> Result<Setup, Error> {
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
    pub(super) fn prepare<C: Backend>(&self, conn: &mut C) -> Result<Setup, Error> {
        let setup = self.setup::<C>()?;
        conn.prepare(self.lock_timeout)?;
        Ok(setup)
    }
}

/// What every entry point needs: the validated table, the app version and
/// the scripts.
pub(super) struct Setup {
    pub(super) table: TableName,
    pub(super) app: AppVersion,
    pub(super) policy: StartupPolicy,
    pub(super) options: PlanOptions,
    pub(super) derived: Arc<Derived>,
}

impl Setup {
    /// The scripts as the planner sees them.
    pub(super) fn known(&self) -> &[KnownScript] {
        self.derived
            .known
            .get_or_init(|| self.derived.registry.known())
    }

    /// The scripts, indexed like `known` (and so like `Step::known_index`).
    pub(super) fn scripts(&self) -> &Registry {
        &self.derived.registry
    }

    /// The fingerprint a database settled at `target` records (see
    /// `migrate_core::settled`), computed once per target.
    pub(super) fn settled(&self, target: &Version) -> Settled {
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
    pub(super) fn aim(
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
    pub(super) fn refuse_ahead(&self, history: &History, plan: &Plan) -> Result<(), Error> {
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
    pub(super) fn review_startup(&self, history: &History, plan: &Plan) -> Result<(), Error> {
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
    pub(super) fn revert_advice(&self, history: &History) -> String {
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
    pub(super) fn above_app_version(&self) -> Vec<ScriptRef> {
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

/// The SQL a step runs: an SQL migration's `up` or `down`, or the recorded
/// `down` SQL of a script this build does not have. `None` for code
/// scripts and for steps only recorded.
pub(super) fn step_sql<'a>(scripts: &'a Registry, step: &'a Step) -> Option<&'a str> {
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
pub(super) fn refuse_transaction_control<C: Backend>(
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
                    name: step.name.to_string(),
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
