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

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use migrate_core::{Target, Version, sql_checksum};

use crate::{Backend, Migrator};

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod admin;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

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
    /// What another connection or process is given to reach the database
    /// at `place`: a URL, or a SQLite path.
    fn url(&self, place: &str) -> Result<String, String>;
    /// Drops a test's database, by the place `create` returned.
    fn drop_database(&mut self, place: &str) -> Result<(), String>;
}

/// A test's own database, migrated: a passing test drops it when this is
/// dropped, a failing (panicking) one keeps it and prints where it is.
pub struct TestDatabase<C: TestConnection> {
    conn: Option<C>,
    place: String,
    url: String,
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
        let (conn, place, url) = with_server::<C, _>(|server| {
            ensure_template(server, &key, &build)?;
            let (conn, place) = server.create(&key, &database_name(spec.test), &build)?;
            let url = server.url(&place)?;
            Ok((conn, place, url))
        })?;
        Ok(TestDatabase {
            conn: Some(conn),
            place,
            url,
            _permit: permit,
        })
    }

    /// An empty database of the test's own (no tracking table, nothing
    /// migrated), for checks that migrate it themselves, such as
    /// [`Migrator::verify`] and [`check_schema!`](crate::check_schema).
    pub fn empty(test: &str) -> TestDatabase<C> {
        let permit = Permit::take();
        let made = with_server::<C, _>(|server| {
            let nothing = |_: &mut C| Ok(());
            ensure_template(server, EMPTY, &nothing)?;
            let (conn, place) = server.create(EMPTY, &database_name(test), &nothing)?;
            let url = server.url(&place)?;
            Ok((conn, place, url))
        });
        match made {
            Ok((conn, place, url)) => TestDatabase {
                conn: Some(conn),
                place,
                url,
                _permit: permit,
            },
            Err(e) => panic!("#[migrate::test] {test}: {e}"),
        }
    }

    /// The connection to the test's database.
    pub fn conn(&mut self) -> &mut C {
        self.conn.as_mut().expect("the connection lives until drop")
    }

    /// Where the database is: its name on a server, its path on SQLite.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// What another connection, or a child process, is given to reach the
    /// database: its URL on a server, its path on SQLite.
    pub fn url(&self) -> &str {
        &self.url
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

/// The key of the empty template (hex, as every key is).
const EMPTY: &str = "0000000000000000";

/// The history check of [`migration_tests!`](crate::migration_tests), on
/// an empty database: the scripts are valid for this connection, a run
/// from empty applies every script up to the application version and
/// leaves nothing pending or in progress, and a second run does nothing.
pub fn check_history<C: TestConnection>(migrator: &Migrator, conn: &mut C) -> Result<(), String> {
    migrator.validate().map_err(|e| e.to_string())?;
    let first = migrator
        .run(conn)
        .map_err(|e| format!("the run from empty failed: {e}"))?;
    let again = migrator
        .run(conn)
        .map_err(|e| format!("the second run failed: {e}"))?;
    if !again.steps.is_empty() {
        return Err(format!("a second run was not a no-op:\n{again}"));
    }
    let status = migrator.status(conn).map_err(|e| e.to_string())?;
    if let Some(in_progress) = &status.in_progress {
        return Err(format!("a step is left in progress: {in_progress}"));
    }
    let unsettled: Vec<String> = status
        .rows
        .iter()
        .filter(|r| {
            !matches!(
                r.state,
                crate::State::Applied | crate::State::AboveAppVersion
            )
        })
        .map(|r| format!("{} `{}`: {:?}", r.version, r.name, r.state))
        .collect();
    if unsettled.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "after a run of {} step(s) from empty, these are not applied:\n  {}",
            first.steps.len(),
            unsettled.join("\n  ")
        ))
    }
}

/// The standard tests of a project's migrations, in one line of a test
/// file, each on an empty database of its own:
///
/// - `every_down_restores_the_schema`: [`Migrator::verify`];
/// - `the_history_is_sound`: [`check_history`];
/// - with `schema = [...]`, `the_migrations_build_the_declared_schema`:
///   [`check_schema!`](crate::check_schema) against diesel's `table!`s.
///
/// ```text
/// migrate::migration_tests!(diesel::SqliteConnection);
/// migrate::migration_tests!(diesel::PgConnection, migrator = my_migrator, schema = [schema::users::table]);
/// ```
///
/// The migrator defaults to `Migrator::new(env!("CARGO_PKG_VERSION"))`, the
/// package's own version; `migrator = path` names a `fn() -> Migrator`.
/// The tests are in a module `migration_tests`. `verify` and the schema
/// check do not support MySQL yet.
#[macro_export]
macro_rules! migration_tests {
    ($conn:ty $(, migrator = $migrator:path)? $(, schema = [$($table:expr),+ $(,)?])? $(,)?) => {
        mod migration_tests {
            #[allow(unused_imports)]
            use super::*;

            fn migrator() -> $crate::Migrator {
                let default = || $crate::Migrator::new(::core::env!("CARGO_PKG_VERSION"));
                $(let default = $migrator;)?
                default()
            }

            fn database(test: &'static str) -> $crate::testing::TestDatabase<$conn> {
                $crate::testing::TestDatabase::<$conn>::empty(test)
            }

            #[test]
            fn every_down_restores_the_schema() {
                let mut db = database(::core::concat!(::core::module_path!(), "::every_down_restores_the_schema"));
                if let ::core::result::Result::Err(e) = migrator().verify(db.conn(), false) {
                    ::core::panic!("{e}");
                }
            }

            #[test]
            fn the_history_is_sound() {
                let mut db = database(::core::concat!(::core::module_path!(), "::the_history_is_sound"));
                if let ::core::result::Result::Err(e) = $crate::testing::check_history(&migrator(), db.conn()) {
                    ::core::panic!("{e}");
                }
            }

            $(
                #[test]
                fn the_migrations_build_the_declared_schema() {
                    let mut db = database(::core::concat!(::core::module_path!(), "::the_migrations_build_the_declared_schema"));
                    if let ::core::result::Result::Err(e) = $crate::check_schema!(migrator(), db.conn(), [$($table),+]) {
                        ::core::panic!("{e}");
                    }
                }
            )?
        }
    };
}

/// The template's key, and the version it migrates to.
fn template_key(migrator: &Migrator, spec: &TestSpec) -> Result<(String, Option<Version>), String> {
    let (text, target) = template_text(migrator, spec)?;
    Ok((sql_checksum(&text)[..16].to_owned(), Some(target)))
}

/// What the template's key is a digest of.
fn template_text(migrator: &Migrator, spec: &TestSpec) -> Result<(String, Version), String> {
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
    // A code script has no checksum: its body can change under the same
    // fingerprint. Then the template is this build's own (keyed by the test
    // binary's size and time), and a rebuild makes a new one.
    let code = registry
        .iter()
        .any(|e| e.version <= &target && e.script.kind() == migrate_core::ScriptKind::Code);
    if code {
        let exe = std::env::current_exe().and_then(std::fs::metadata);
        match exe.and_then(|m| Ok((m.len(), m.modified()?))) {
            Ok((len, modified)) => text.push_str(&format!("{len} {modified:?}\n")),
            Err(e) => return Err(format!("cannot read the test binary's metadata: {e}")),
        }
    }
    Ok((text, target))
}

/// Makes sure the template `key` exists, once per process: the first
/// test to need it builds it (under the server's lock, across processes),
/// the others wait for it here.
fn ensure_template<C: TestConnection>(
    server: &mut C::Server,
    key: &str,
    build: &dyn Fn(&mut C) -> Result<(), String>,
) -> Result<(), String> {
    type Gates = Mutex<HashMap<String, Arc<Mutex<bool>>>>;
    static GATES: OnceLock<Gates> = OnceLock::new();
    let gate = GATES
        .get_or_init(Gates::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(format!("{}:{key}", C::NAME))
        .or_default()
        .clone();
    let mut made = gate.lock().unwrap_or_else(|e| e.into_inner());
    if !*made {
        server.template(key, build)?;
        *made = true;
    }
    Ok(())
}

/// Runs `f` on an admin connection to the backend's server: an idle one of
/// the process's, or a new one, so that tests create and drop their
/// databases in parallel. The first one made also drops the leftovers of
/// earlier runs.
fn with_server<C: TestConnection, T>(
    f: impl FnOnce(&mut C::Server) -> Result<T, String>,
) -> Result<T, String> {
    let pool = pool::<C>();
    let idle = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut server = match idle {
        Some(server) => server,
        None => {
            let mut server = C::Server::connect()?;
            static CLEANED: Mutex<Vec<std::any::TypeId>> = Mutex::new(Vec::new());
            let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
            if !cleaned.contains(&std::any::TypeId::of::<C>()) {
                server.clean();
                cleaned.push(std::any::TypeId::of::<C>());
            }
            server
        }
    };
    let result = f(&mut server);
    pool.lock().unwrap_or_else(|e| e.into_inner()).push(server);
    result
}

/// The idle admin connections, per backend and process.
fn pool<C: TestConnection>() -> &'static Mutex<Vec<C::Server>> {
    use std::any::{Any, TypeId};
    type Pools = Mutex<HashMap<TypeId, &'static (dyn Any + Send + Sync)>>;
    static POOLS: OnceLock<Pools> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Pools::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let pool = *pools.entry(TypeId::of::<C>()).or_insert_with(|| {
        let leaked: &'static Mutex<Vec<C::Server>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        leaked
    });
    pool.downcast_ref()
        .expect("one pool type per connection type")
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

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_code_script_ties_the_template_to_the_test_binary() {
        use migrate_core::{BoxError, MigrationScript, Script};
        struct Noop;
        impl MigrationScript for Noop {
            type Connection = diesel::SqliteConnection;
            fn up(&self, _: &mut diesel::SqliteConnection) -> Result<(), BoxError> {
                Ok(())
            }
        }
        static NOOP: Noop = Noop;
        let sql = Migrator::new("0.0.0")
            .only_listed_scripts()
            .scripts([Script::sql(
                "1.0.0",
                "a",
                "CREATE TABLE a (id INTEGER);",
                None,
            )]);
        let code = sql.clone().scripts([Script::new("1.0.1", &NOOP)]);
        let exe = std::fs::metadata(std::env::current_exe().unwrap()).unwrap();
        let size = format!("\n{} ", exe.len());
        let spec = TestSpec::new("t");
        assert!(!template_text(&sql, &spec).unwrap().0.contains(&size));
        assert!(template_text(&code, &spec).unwrap().0.contains(&size));
        // Below the code script, the template is the SQL one's again.
        let below = TestSpec {
            version: Some("1.0.0"),
            ..spec
        };
        assert!(!template_text(&code, &below).unwrap().0.contains(&size));
    }

    #[test]
    fn a_leftover_of_a_process_that_is_gone_can_go() {
        // No process has that pid: /proc stops far below it.
        assert!(gone("mt_4000000000_1_x") || !std::path::Path::new("/proc").is_dir());
        assert!(!gone("migrate_tpl_abc"), "templates are not leftovers");
    }
}
