//! A fresh, migrated database for each test: what `#[migrate::test]`
//! expands to, usable by hand through [`TestDatabase`].
//!
//! The migrated database is built once per migration set (the build's
//! scripts, the tracking table, the target version and the fixtures) as a
//! *template*, under a lock so that parallel test processes build it once,
//! and kept across runs until the migrations change. Each test gets a copy:
//! a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL, and
//! on MySQL a new database with the template's tables and rows (see
//! `docs/testing.md`).
//!
//! A passing test's database is dropped; a failing test's is kept, and its
//! name is printed with the failure. Databases that earlier runs left
//! behind are dropped at the next start. PostgreSQL comes from
//! `MIGRATE_TEST_POSTGRES_URL`, MySQL from `MIGRATE_TEST_MYSQL_URL`: an
//! admin URL whose user may create databases. Without it, such a test
//! fails, saying what to set.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use migrate_core::{Target, Version, sql_checksum};

use crate::{Backend, Migrator};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod url;

/// A SQL file applied after the migrations, embedded by `#[migrate::test]`.
#[derive(Debug, Clone, Copy)]
pub struct Fixture {
    /// Its path, as the attribute was given it (relative to the crate).
    pub path: &'static str,
    /// Its SQL.
    pub sql: &'static str,
}

/// What a test asks of its database: what `#[migrate::test]`'s options
/// become.
#[derive(Debug, Clone, Copy)]
pub struct TestSpec {
    /// The test's path (`module_path!()` and its name), for the database's
    /// name and messages.
    pub test: &'static str,
    /// SQL files applied after the migrations, in order.
    pub fixtures: &'static [Fixture],
    /// The version to migrate to; `None` applies every script of the build.
    pub version: Option<&'static str>,
    /// The migrator, for custom tables or scripts listed by hand; `None` is
    /// `Migrator::new("0.0.0")` with the registered scripts.
    pub migrator: Option<fn() -> Migrator>,
}

impl TestSpec {
    /// A spec for the test at `test`, with every migration and no fixture.
    pub const fn new(test: &'static str) -> TestSpec {
        TestSpec {
            test,
            fixtures: &[],
            version: None,
            migrator: None,
        }
    }
}

/// A connection type that `#[migrate::test]` can give a test: diesel's
/// `SqliteConnection`, `PgConnection` or `MysqlConnection`, as enabled by
/// the crate's features.
#[diagnostic::on_unimplemented(
    message = "`#[migrate::test]` cannot give a test a `{Self}`",
    label = "not a connection `#[migrate::test]` provides",
    note = "the argument must be `&mut SqliteConnection`, `&mut PgConnection` or `&mut MysqlConnection` (diesel's, with migrate's feature for that backend)"
)]
pub trait TestConnection: Backend {
    #[doc(hidden)]
    type Server: Server<Self>;
}

/// Where one backend keeps templates and test databases.
#[doc(hidden)]
pub trait Server<C>: Sized + Send + 'static {
    /// Reaches the server (its admin URL), or says what to set.
    fn connect() -> Result<Self, String>;
    /// Drops the databases that earlier runs left behind.
    fn clean(&mut self);
    /// Makes the template `key` unless it exists, with `build` migrating a
    /// connection to an empty database.
    fn template(
        &mut self,
        key: &str,
        build: &dyn Fn(&mut C) -> Result<(), String>,
    ) -> Result<(), String>;
    /// A copy of the template `key` named `name`, and a connection to it;
    /// `build` is for a backend that has to migrate instead of copying.
    fn create(
        &mut self,
        key: &str,
        name: &str,
        build: &dyn Fn(&mut C) -> Result<(), String>,
    ) -> Result<(C, String), String>;
    /// Drops a test's database, by the place `create` returned.
    fn drop_database(&mut self, place: &str) -> Result<(), String>;
}

/// A test's own database, migrated: a passing test drops it when this is
/// dropped, a failing (panicking) one keeps it and prints where it is.
pub struct TestDatabase<C: TestConnection> {
    conn: Option<C>,
    place: String,
    _permit: Permit,
}

impl<C: TestConnection> TestDatabase<C> {
    /// Creates the test's database from the template (built first when
    /// needed). Panics with the cause when that fails: a test without its
    /// database cannot run.
    pub fn new(spec: &TestSpec) -> TestDatabase<C> {
        let permit = Permit::take();
        match Self::try_new(spec, permit) {
            Ok(db) => db,
            Err(e) => panic!("#[migrate::test] {}: {e}", spec.test),
        }
    }

    fn try_new(spec: &TestSpec, permit: Permit) -> Result<TestDatabase<C>, String> {
        let migrator = spec
            .migrator
            .map_or_else(|| Migrator::new("0.0.0"), |make| make());
        let (key, target) = template_key(&migrator, spec)?;
        let build = |conn: &mut C| -> Result<(), String> {
            migrator
                .run_to(conn, target.clone().map(Target::UpTo))
                .map_err(|e| format!("migrating the template failed: {e}"))?;
            for fixture in spec.fixtures {
                conn.batch_execute(fixture.sql)
                    .map_err(|e| format!("fixture `{}` failed: {e}", fixture.path))?;
            }
            Ok(())
        };
        let (conn, place) = with_server::<C, _>(|server| {
            if prepared()
                .lock()
                .unwrap()
                .insert(format!("{}:{key}", C::NAME))
            {
                server.template(&key, &build)?;
            }
            server.create(&key, &database_name(spec.test), &build)
        })?;
        Ok(TestDatabase {
            conn: Some(conn),
            place,
            _permit: permit,
        })
    }

    /// The connection to the test's database.
    pub fn conn(&mut self) -> &mut C {
        self.conn.as_mut().expect("the connection lives until drop")
    }

    /// Where the database is: its name on a server, its path on SQLite.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Keeps the database when the test fails without panicking (a test
    /// that returned an error), and says where it is.
    pub fn keep(mut self) -> String {
        let place = std::mem::take(&mut self.place);
        drop(self.conn.take());
        eprintln!("#[migrate::test] kept the failed test's database: {place}");
        place
    }
}

impl<C: TestConnection> Drop for TestDatabase<C> {
    fn drop(&mut self) {
        drop(self.conn.take());
        if self.place.is_empty() {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "#[migrate::test] kept the failed test's database: {}",
                self.place
            );
            return;
        }
        let place = std::mem::take(&mut self.place);
        if let Err(e) = with_server::<C, _>(|server| server.drop_database(&place)) {
            eprintln!("#[migrate::test] could not drop {place}: {e}");
        }
    }
}

/// What a `#[migrate::test]` function may return: `()` or a `Result`
/// whose error is `Debug`.
pub trait TestResult {
    /// The failure, if any, as the test reports it.
    fn failure(self) -> Option<String>;
}

impl TestResult for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Debug> TestResult for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| format!("{e:?}"))
    }
}

/// Runs `test` on a new [`TestDatabase`]: the whole of what
/// `#[migrate::test]` expands to.
pub fn run<C: TestConnection, R: TestResult>(spec: &TestSpec, test: impl FnOnce(&mut C) -> R) {
    let mut db = TestDatabase::<C>::new(spec);
    if let Some(failure) = test(db.conn()).failure() {
        let place = db.keep();
        panic!(
            "{}: the test returned an error: {failure} (its database is kept: {place})",
            spec.test
        );
    }
}

/// The template's key, and the version it migrates to.
fn template_key(migrator: &Migrator, spec: &TestSpec) -> Result<(String, Option<Version>), String> {
    let registry = migrator.registry().map_err(|e| e.to_string())?;
    let target = match spec.version {
        Some(v) => Version::parse(v).map_err(|e| format!("version `{v}`: {e}"))?,
        None => match registry.iter().last() {
            Some(last) => last.version.clone(),
            None => Version::parse("0.0.0").expect("a version"),
        },
    };
    let (fingerprint, _) = registry.settled_at(&target);
    let mut text = format!(
        "{}\n{}\n{target}\n{fingerprint}\n",
        env!("CARGO_PKG_VERSION"),
        migrator.table_name()
    );
    for fixture in spec.fixtures {
        text.push_str(&sql_checksum(fixture.sql));
        text.push('\n');
    }
    let key = sql_checksum(&text)[..16].to_owned();
    Ok((key, Some(target)))
}

/// The templates this process made sure of.
fn prepared() -> &'static Mutex<HashSet<String>> {
    static PREPARED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    PREPARED.get_or_init(Mutex::default)
}

/// Runs `f` on the process's connection to the backend's server, made (and
/// the leftovers of earlier runs cleaned) at first use.
fn with_server<C: TestConnection, T>(
    f: impl FnOnce(&mut C::Server) -> Result<T, String>,
) -> Result<T, String> {
    let mut slot = server_slot::<C>().lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        let mut server = C::Server::connect()?;
        server.clean();
        *slot = Some(server);
    }
    f(slot.as_mut().expect("just set"))
}

/// One server connection per backend and process.
fn server_slot<C: TestConnection>() -> &'static Mutex<Option<C::Server>> {
    use std::any::{Any, TypeId};
    use std::collections::HashMap;
    static SLOTS: OnceLock<Mutex<HashMap<TypeId, &'static (dyn Any + Send + Sync)>>> =
        OnceLock::new();
    let mut slots = SLOTS.get_or_init(Mutex::default).lock().unwrap();
    let slot = *slots.entry(TypeId::of::<C>()).or_insert_with(|| {
        let leaked: &'static Mutex<Option<C::Server>> = Box::leak(Box::new(Mutex::new(None)));
        leaked
    });
    slot.downcast_ref()
        .expect("one slot type per connection type")
}

/// A name for a test's database, unique in this process, that tells the
/// process that made it: `mt_<pid>_<n>_<test>`.
fn database_name(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let test: String = test
        .rsplit("::")
        .next()
        .unwrap_or(test)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    format!("mt_{}_{n}_{test}", std::process::id())
}

/// The process that made a test database, from its name.
fn maker(name: &str) -> Option<u32> {
    name.strip_prefix("mt_")?.split('_').next()?.parse().ok()
}

/// Whether the process that made a leftover is gone, so its database can
/// go. Where that cannot be known (no `/proc`), leftovers stay.
fn gone(name: &str) -> bool {
    let Some(pid) = maker(name) else {
        return false;
    };
    let proc = std::path::Path::new("/proc");
    pid != std::process::id() && proc.is_dir() && !proc.join(pid.to_string()).exists()
}

/// How many test databases a process holds at once (and so connections):
/// `MIGRATE_TEST_MAX_CONNECTIONS`, default 8, so that `cargo test` with
/// many threads stays under a server's default `max_connections`.
struct Permit;

fn permits() -> &'static (Mutex<usize>, Condvar, usize) {
    static PERMITS: OnceLock<(Mutex<usize>, Condvar, usize)> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let max = std::env::var("MIGRATE_TEST_MAX_CONNECTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(8);
        (Mutex::new(0), Condvar::new(), max)
    })
}

impl Permit {
    fn take() -> Permit {
        let (held, freed, max) = permits();
        let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
        while *held >= *max {
            held = freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        *held += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (held, freed, _) = permits();
        *held.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_tells_its_process_and_test() {
        let name = database_name("my_crate::users::signup_creates_a_user");
        assert!(name.starts_with(&format!("mt_{}_", std::process::id())));
        assert!(name.ends_with("_signup_creates_a_user"));
        assert_eq!(maker(&name), Some(std::process::id()));
        assert!(!gone(&name), "this process is alive");
    }

    #[test]
    fn a_leftover_of_a_process_that_is_gone_can_go() {
        // No process has that pid: /proc stops far below it.
        assert!(gone("mt_4000000000_1_x") || !std::path::Path::new("/proc").is_dir());
        assert!(!gone("migrate_tpl_abc"), "templates are not leftovers");
    }
}
