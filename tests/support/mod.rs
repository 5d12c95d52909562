//! A fresh database per test, on SQLite, PostgreSQL and MySQL/MariaDB, and
//! scripts that work on all three. PostgreSQL comes from
//! `MIGRATE_TEST_POSTGRES_URL` and MySQL from `MIGRATE_TEST_MYSQL_URL` (admin
//! URLs; `scripts/test` starts throwaway servers and sets them). Without them
//! the tests fail under CI and announce a skip loudly elsewhere.
#![allow(dead_code, unreachable_pub)] // each test file uses a different part

use std::marker::PhantomData;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection, sql_query};
use migrate::backend::Backend;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use migrate::testing::TestDatabase;
use migrate::{BoxError, MigrationScript, Script};

/// A fresh, empty database.
pub trait TestDb: Sized {
    /// The backend's name: `sqlite`, `postgres` or `mysql` (what a child
    /// process of a test is told).
    const NAME: &'static str;
    /// The connection type.
    type Conn: Backend + SimpleConnection;
    /// A new empty database, or `None` (after a loud message) when the
    /// backend is unavailable outside CI.
    fn create() -> Option<Self>;
    /// A new connection to it.
    fn connect(&self) -> Self::Conn;
    /// What a command line is given to reach it: a URL, or a SQLite path.
    fn url(&self) -> String;
    /// One text column of a query's rows.
    fn strings(conn: &mut Self::Conn, sql: &str) -> Vec<String>;
    /// The user tables, sorted.
    fn tables(conn: &mut Self::Conn) -> Vec<String>;
    /// The schema as text, sorted: every table's columns with their types
    /// and nullability, and every index (for before/after comparisons).
    fn schema(conn: &mut Self::Conn) -> Vec<String>;
    /// SQL that refuses to run inside a transaction.
    const OUTSIDE_TRANSACTION_SQL: &'static str;
    /// The tracking table's `change` column, quoted (a reserved word on
    /// MySQL).
    const CHANGE: &'static str = "\"change\"";
    /// Whether a trigger forgets the state row on any change to the
    /// history (SQLite, PostgreSQL); elsewhere (MySQL) only an added row
    /// or a deleted last one is noticed.
    const STATE_TRIGGER: bool = true;
    /// SQL that runs, but whose transaction fails at its `COMMIT` (a
    /// deferred constraint), where the database has such constraints.
    const DEFERRED_VIOLATION: Option<&'static str> = None;
}

#[derive(QueryableByName)]
struct S {
    #[diesel(sql_type = Text)]
    s: String,
}

/// A SQLite file in a temporary directory.
pub struct Sqlite {
    _dir: tempfile::TempDir,
    pub path: String,
}

impl Sqlite {
    /// An existing file (for child processes of a test).
    pub fn at(path: &str) -> Sqlite {
        Sqlite {
            _dir: tempfile::tempdir().unwrap(),
            path: path.to_owned(),
        }
    }
}

impl TestDb for Sqlite {
    const NAME: &'static str = "sqlite";
    type Conn = SqliteConnection;
    const OUTSIDE_TRANSACTION_SQL: &'static str = "VACUUM";

    fn create() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db").to_string_lossy().into_owned();
        Some(Sqlite { _dir: dir, path })
    }

    /// With a busy timeout, as the executor sets on its own connections:
    /// a test that reads while another connection writes waits instead of
    /// failing with "database is locked".
    fn connect(&self) -> SqliteConnection {
        let mut conn = SqliteConnection::establish(&self.path).unwrap();
        conn.batch_execute("PRAGMA busy_timeout = 30000").unwrap();
        conn
    }

    fn url(&self) -> String {
        self.path.clone()
    }

    fn strings(conn: &mut SqliteConnection, sql: &str) -> Vec<String> {
        sql_query(format!("SELECT CAST(s AS TEXT) AS s FROM ({sql})"))
            .load::<S>(conn)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|r| r.s)
            .collect()
    }

    fn tables(conn: &mut SqliteConnection) -> Vec<String> {
        Self::strings(
            conn,
            "SELECT name AS s FROM sqlite_master WHERE type = 'table' ORDER BY name",
        )
    }

    fn schema(conn: &mut SqliteConnection) -> Vec<String> {
        Self::strings(
            conn,
            "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') AS s FROM sqlite_master ORDER BY type, name",
        )
    }
}

#[cfg(feature = "postgres")]
#[allow(unused_imports)] // not every test file uses it
pub use pg::Postgres;

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use diesel::PgConnection;

    /// A database of its own on the test server, from
    /// `migrate::testing::TestDatabase::empty`: dropped when the test
    /// passes, kept (and named) when it fails.
    pub struct Postgres {
        pub url: String,
        _db: Option<std::sync::Mutex<TestDatabase<PgConnection>>>, // in a Mutex: a TestDb is shared across threads
    }

    impl Postgres {
        /// An existing database, which this value does not drop (for
        /// child processes of a test).
        pub fn at(url: String) -> Postgres {
            Postgres { url, _db: None }
        }
    }

    impl TestDb for Postgres {
        const NAME: &'static str = "postgres";
        type Conn = PgConnection;
        const OUTSIDE_TRANSACTION_SQL: &'static str = "CREATE INDEX CONCURRENTLY log_v ON log (v)";
        const DEFERRED_VIOLATION: Option<&'static str> = Some(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
             CREATE TABLE child (parent INTEGER REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n\
             INSERT INTO child VALUES (1);",
        );

        fn create() -> Option<Self> {
            postgres_admin_url()?;
            let db = TestDatabase::<PgConnection>::empty(&test_name());
            Some(Postgres {
                url: db.url().to_owned(),
                _db: Some(std::sync::Mutex::new(db)),
            })
        }

        fn connect(&self) -> PgConnection {
            PgConnection::establish(&self.url).unwrap()
        }

        fn url(&self) -> String {
            self.url.clone()
        }

        fn strings(conn: &mut PgConnection, sql: &str) -> Vec<String> {
            sql_query(format!("SELECT CAST(s AS TEXT) AS s FROM ({sql}) AS q"))
                .load::<S>(conn)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .into_iter()
                .map(|r| r.s)
                .collect()
        }

        fn tables(conn: &mut PgConnection) -> Vec<String> {
            Self::strings(
                conn,
                "SELECT table_name AS s FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
            )
        }

        fn schema(conn: &mut PgConnection) -> Vec<String> {
            let mut schema = Self::strings(
                conn,
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '') AS s
                 FROM information_schema.columns WHERE table_schema = 'public' ORDER BY s",
            );
            schema.extend(Self::strings(
                conn,
                "SELECT indexdef AS s FROM pg_indexes WHERE schemaname = 'public' ORDER BY s",
            ));
            schema.extend(Self::strings(
                conn,
                "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS s
                 FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY s",
            ));
            schema.extend(Self::strings(
                conn,
                "SELECT tgrelid::regclass::text || ' ' || tgname AS s FROM pg_trigger WHERE NOT tgisinternal ORDER BY s",
            ));
            schema
        }
    }
}

/// The admin URL of the PostgreSQL test server. Under CI its absence is a
/// failure.
pub fn postgres_admin_url() -> Option<String> {
    admin_url("MIGRATE_TEST_POSTGRES_URL", "PostgreSQL")
}

/// The admin URL of the MySQL/MariaDB test server. Under CI its absence is a
/// failure.
pub fn mysql_admin_url() -> Option<String> {
    admin_url("MIGRATE_TEST_MYSQL_URL", "MySQL")
}

fn admin_url(var: &str, server: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: CI must run the {server} tests (use scripts/test)")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: {server} test — {var} is not set. Run scripts/test to start a throwaway server. ***\n"
            );
            None
        }
    }
}

#[cfg(feature = "mysql")]
#[allow(unused_imports)] // not every test file uses it
pub use my::Mysql;

#[cfg(feature = "mysql")]
mod my {
    use super::*;
    use diesel::MysqlConnection;

    /// A database of its own on the test server, from
    /// `migrate::testing::TestDatabase::empty`: dropped when the test
    /// passes, kept (and named) when it fails.
    pub struct Mysql {
        pub url: String,
        _db: Option<std::sync::Mutex<TestDatabase<MysqlConnection>>>, // in a Mutex: a TestDb is shared across threads
    }

    impl Mysql {
        /// An existing database, which this value does not drop (for
        /// child processes of a test).
        pub fn at(url: String) -> Mysql {
            Mysql { url, _db: None }
        }
    }

    impl TestDb for Mysql {
        const NAME: &'static str = "mysql";
        type Conn = MysqlConnection;
        // Refused while a transaction is open (error 1568).
        const OUTSIDE_TRANSACTION_SQL: &'static str =
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE";
        const CHANGE: &'static str = "`change`";
        const STATE_TRIGGER: bool = false;

        fn create() -> Option<Self> {
            mysql_admin_url()?;
            let db = TestDatabase::<MysqlConnection>::empty(&test_name());
            Some(Mysql {
                url: db.url().to_owned(),
                _db: Some(std::sync::Mutex::new(db)),
            })
        }

        fn connect(&self) -> MysqlConnection {
            MysqlConnection::establish(&self.url).unwrap()
        }

        fn url(&self) -> String {
            self.url.clone()
        }

        /// Runs `sql` as it is: MariaDB drops the `ORDER BY` of a derived
        /// table, so the text column `s` cannot be cast in an outer query.
        fn strings(conn: &mut MysqlConnection, sql: &str) -> Vec<String> {
            sql_query(sql)
                .load::<S>(conn)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .into_iter()
                .map(|r| r.s)
                .collect()
        }

        fn tables(conn: &mut MysqlConnection) -> Vec<String> {
            Self::strings(
                conn,
                "SELECT table_name AS s FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name",
            )
        }

        fn schema(conn: &mut MysqlConnection) -> Vec<String> {
            let mut schema = Self::strings(
                conn,
                "SELECT CONCAT(table_name, '.', column_name, ' ', column_type, ' ', is_nullable, ' ', COALESCE(column_default, '')) AS s
                 FROM information_schema.columns WHERE table_schema = DATABASE() ORDER BY s",
            );
            schema.extend(Self::strings(
                conn,
                "SELECT CONCAT(table_name, '.', index_name, ' ', column_name, ' ', seq_in_index) AS s
                 FROM information_schema.statistics WHERE table_schema = DATABASE() ORDER BY s",
            ));
            schema
        }
    }
}

/// Instantiates generic tests `fn name<D: TestDb>()` for each backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name::<$crate::support::Sqlite>() })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test] fn $name() { super::$name::<$crate::support::Postgres>() })*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $(#[test] fn $name() { super::$name::<$crate::support::Mysql>() })*
        }
    };
}

/// Instantiates generic tests `fn name<D: TestDb>()` for SQLite and
/// PostgreSQL: the checks that MySQL does not have yet.
#[macro_export]
macro_rules! on_sqlite_and_postgres {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name::<$crate::support::Sqlite>() })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[test] fn $name() { super::$name::<$crate::support::Postgres>() })*
        }
    };
}

/// A code script running fixed SQL on any backend, optionally failing or
/// panicking after its SQL ran (inside its transaction).
pub struct Exec<C> {
    up: &'static str,
    down: &'static str,
    fail: Option<&'static str>,
    panic: bool,
    sleep: Duration,
    _conn: PhantomData<fn() -> C>,
}

impl<C: Backend + SimpleConnection> MigrationScript for Exec<C> {
    type Connection = C;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut C) -> Result<(), BoxError> {
        conn.batch_execute(self.up)?;
        std::thread::sleep(self.sleep);
        if self.panic {
            panic!("script exploded");
        }
        match self.fail {
            Some(message) => Err(message.into()),
            None => Ok(()),
        }
    }

    fn down(&self, conn: &mut C) -> Result<(), BoxError> {
        conn.batch_execute(self.down)?;
        Ok(())
    }
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A code script: `up` runs `up_sql`, `down` runs `down_sql`.
#[track_caller]
pub fn code<C: Backend + SimpleConnection>(
    version: &'static str,
    up: &'static str,
    down: &'static str,
) -> Script {
    Script::new(
        version,
        leak(Exec::<C> {
            up,
            down,
            fail: None,
            panic: false,
            sleep: Duration::ZERO,
            _conn: PhantomData,
        }),
    )
}

/// A code script that runs `up_sql` and then returns an error.
#[track_caller]
pub fn failing<C: Backend + SimpleConnection>(version: &'static str, up: &'static str) -> Script {
    Script::new(
        version,
        leak(Exec::<C> {
            up,
            down: "",
            fail: Some("the script failed on purpose"),
            panic: false,
            sleep: Duration::ZERO,
            _conn: PhantomData,
        }),
    )
}

/// A code script that runs `up_sql` and then panics.
#[track_caller]
pub fn panicking<C: Backend + SimpleConnection>(version: &'static str, up: &'static str) -> Script {
    Script::new(
        version,
        leak(Exec::<C> {
            up,
            down: "",
            fail: None,
            panic: true,
            sleep: Duration::ZERO,
            _conn: PhantomData,
        }),
    )
}

/// A code script that runs `up_sql` and then sleeps inside its transaction.
#[track_caller]
pub fn slow<C: Backend + SimpleConnection>(
    version: &'static str,
    up: &'static str,
    sleep: Duration,
) -> Script {
    Script::new(
        version,
        leak(Exec::<C> {
            up,
            down: "",
            fail: None,
            panic: false,
            sleep,
            _conn: PhantomData,
        }),
    )
}

/// The history as `version:direction` strings, in change order.
pub fn history<D: TestDb>(conn: &mut D::Conn, table: &str) -> Vec<String> {
    D::strings(
        conn,
        &format!(
            "SELECT CONCAT(version, ':', direction) AS s FROM {table} ORDER BY {}",
            D::CHANGE
        ),
    )
}

/// The rows of the `log` table the scripts write to.
pub fn log<D: TestDb>(conn: &mut D::Conn) -> Vec<String> {
    D::strings(conn, "SELECT v AS s FROM log ORDER BY v")
}

/// A finished process: its exit code and what it printed.
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Both outputs, stdout first.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A child process whose output is read as it comes (a child blocked on a
/// full pipe would look hung), and which is killed if it is dropped before
/// it finished: no test leaves processes behind on an early return.
pub struct Proc {
    child: std::process::Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    /// Starts `cmd`, its output piped.
    pub fn spawn(cmd: &mut std::process::Command) -> Result<Proc, String> {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = child.stdout.take().map(|p| read(Box::new(p)));
        let stderr = child.stderr.take().map(|p| read(Box::new(p)));
        Ok(Proc {
            child,
            stdout,
            stderr,
        })
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> Result<bool, String> {
        Ok(self.child.try_wait().map_err(|e| e.to_string())?.is_none())
    }

    /// SIGKILL.
    pub fn kill(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| e.to_string())
    }

    /// Waits for it, at most `limit` (a safety net against a hang, which
    /// is then the failure).
    pub fn finish(mut self, limit: Duration) -> Result<Run, String> {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > limit {
                return Err(format!("a child still ran after {limit:?}: it hung"));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let output = |h: Option<std::thread::JoinHandle<String>>| {
            h.map(|h| h.join().unwrap()).unwrap_or_default()
        };
        let stdout = output(self.stdout.take());
        let stderr = output(self.stderr.take());
        Ok(Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running test's name, which libtest gives its thread (for the
/// database's name).
fn test_name() -> String {
    std::thread::current().name().unwrap_or("test").to_owned()
}
