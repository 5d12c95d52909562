//! `#[migrate::test]`'s database against sqlx's way (a new empty database,
//! then every migration run on it), side by side in one run, with N = 100
//! and 500 small migrations (`CREATE TABLE t_i (id INTEGER PRIMARY KEY,
//! name TEXT NOT NULL)`, listed by hand).
//!
//! `cargo bench --bench testing [--features postgres,mysql]`: SQLite, and
//! PostgreSQL and MySQL when `MIGRATE_TEST_POSTGRES_URL` and
//! `MIGRATE_TEST_MYSQL_URL` are set. Each figure is what one test pays
//! before its first statement: its database created, connected and
//! migrated. Medians of `MIGRATE_BENCH_ROUNDS` (default 15) rounds, the two
//! ways alternated. Then a suite of 200 small tests (one insert, one read)
//! at N = 100, on as many threads as `cargo test` uses here, both ways.
//!
//! Under `cargo test` (no `--bench`) it runs N = 10 and 3 rounds: both ways
//! must work; nothing about time is asserted.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use migrate::testing::{TestConnection, TestDatabase, TestSpec};
use migrate::{Migrator, Script, Target};

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The migration sets made so far, by N.
type Sets = std::sync::Mutex<Vec<(usize, &'static [Script])>>;

/// The N migrations, made once per N.
fn scripts(n: usize) -> &'static [Script] {
    static SETS: OnceLock<Sets> = OnceLock::new();
    let mut sets = SETS.get_or_init(Default::default).lock().unwrap();
    if let Some((_, s)) = sets.iter().find(|(k, _)| *k == n) {
        return s;
    }
    let made: Vec<Script> = (1..=n)
        .map(|i| {
            Script::sql(
                leak(format!("1.0.{i}")),
                leak(format!("create_t_{i}")),
                leak(format!(
                    "CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL);"
                )),
                None,
            )
        })
        .collect();
    let made: &'static [Script] = Box::leak(made.into_boxed_slice());
    sets.push((n, made));
    made
}

/// The size the migrators below use (a `fn() -> Migrator` cannot capture).
static SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn migrator() -> Migrator {
    let n = SIZE.load(std::sync::atomic::Ordering::SeqCst);
    Migrator::new("0.0.0")
        .only_listed_scripts()
        .scripts(scripts(n).iter().copied())
}

/// sqlx's way on one backend: a new empty database and its connection, and
/// how to drop it.
trait Fresh: TestConnection + SimpleConnection {
    const LABEL: &'static str;
    fn fresh(name: &str) -> Self;
    fn drop_fresh(name: &str);
}

impl Fresh for diesel::SqliteConnection {
    const LABEL: &'static str = "SQLite file";
    fn fresh(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}.sqlite"));
        let _ = std::fs::remove_file(&path);
        diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap()
    }
    fn drop_fresh(name: &str) {
        std::fs::remove_file(std::env::temp_dir().join(format!("{name}.sqlite"))).unwrap();
    }
}

fn url_of(var: &str, db: &str) -> String {
    let admin = std::env::var(var).unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

#[cfg(feature = "postgres")]
impl Fresh for diesel::PgConnection {
    const LABEL: &'static str = "PostgreSQL";
    fn fresh(name: &str) -> Self {
        admin_pg()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        diesel::PgConnection::establish(&url_of("MIGRATE_TEST_POSTGRES_URL", name)).unwrap()
    }
    fn drop_fresh(name: &str) {
        admin_pg()
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    }
}

#[cfg(feature = "postgres")]
fn admin_pg() -> diesel::PgConnection {
    diesel::PgConnection::establish(&std::env::var("MIGRATE_TEST_POSTGRES_URL").unwrap()).unwrap()
}

#[cfg(feature = "mysql")]
impl Fresh for diesel::MysqlConnection {
    const LABEL: &'static str = "MariaDB";
    fn fresh(name: &str) -> Self {
        admin_my()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        diesel::MysqlConnection::establish(&url_of("MIGRATE_TEST_MYSQL_URL", name)).unwrap()
    }
    fn drop_fresh(name: &str) {
        admin_my()
            .batch_execute(&format!("DROP DATABASE {name}"))
            .unwrap();
    }
}

#[cfg(feature = "mysql")]
fn admin_my() -> diesel::MysqlConnection {
    diesel::MysqlConnection::establish(&std::env::var("MIGRATE_TEST_MYSQL_URL").unwrap()).unwrap()
}

fn median(mut d: Vec<Duration>) -> f64 {
    d.sort();
    d[d.len() / 2].as_secs_f64() * 1000.0
}

fn spec() -> TestSpec {
    TestSpec {
        migrator: Some(migrator),
        ..TestSpec::new("bench::testing")
    }
}

/// One test's database, sqlx's way: created, connected, migrated.
fn sqlx_way<C: Fresh>(name: &str) -> C {
    let mut conn = C::fresh(name);
    let n = SIZE.load(std::sync::atomic::Ordering::SeqCst);
    let top = migrate::Version::parse(&format!("1.0.{n}")).unwrap();
    migrator()
        .run_to(&mut conn, Some(Target::UpTo(top)))
        .unwrap();
    conn
}

fn per_test<C: Fresh>(n: usize, rounds: usize) {
    SIZE.store(n, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    drop(TestDatabase::<C>::new(&spec()));
    let first = started.elapsed();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let started = Instant::now();
        let db = TestDatabase::<C>::new(&spec());
        ours.push(started.elapsed());
        drop(db);
        let name = format!("bench_fresh_{}_{round}", std::process::id());
        let started = Instant::now();
        let conn = sqlx_way::<C>(&name);
        theirs.push(started.elapsed());
        drop(conn);
        C::drop_fresh(&name);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "| {} | {n} | {ours:.2} | {theirs:.2} | {:.1}x | {:.0} |",
        C::LABEL,
        theirs / ours,
        first.as_secs_f64() * 1000.0
    );
}

/// 200 small tests on `threads` threads, as libtest runs them: each gets
/// its database, inserts a row and reads it back.
fn suite<C: Fresh>(n: usize, tests: usize, threads: usize) {
    SIZE.store(n, std::sync::atomic::Ordering::SeqCst);
    drop(TestDatabase::<C>::new(&spec()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let body = |conn: &mut C| {
        conn.batch_execute("INSERT INTO t_1 (id, name) VALUES (1, 'x'); SELECT name FROM t_1")
            .unwrap();
    };
    let run = |ours: bool| {
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= tests {
                            break;
                        }
                        if ours {
                            let mut db = TestDatabase::<C>::new(&spec());
                            body(db.conn());
                        } else {
                            let name = format!("bench_suite_{}_{i}", std::process::id());
                            let mut conn = sqlx_way::<C>(&name);
                            body(&mut conn);
                            drop(conn);
                            C::drop_fresh(&name);
                        }
                    }
                });
            }
        });
        next.store(0, std::sync::atomic::Ordering::SeqCst);
        started.elapsed().as_secs_f64()
    };
    let (ours, theirs) = (run(true), run(false));
    println!(
        "| {} | {n} | {tests} tests on {threads} threads | {ours:.2} s | {theirs:.2} s | {:.1}x |",
        C::LABEL,
        theirs / ours
    );
}

fn all<C: Fresh>(sizes: &[usize], rounds: usize, tests: usize, threads: usize) {
    for &n in sizes {
        per_test::<C>(n, rounds);
    }
    suite::<C>(sizes[0], tests, threads);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = std::env::var("MIGRATE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let (sizes, rounds, tests): (&[usize], usize, usize) = if full {
        (&[100, 500], rounds, 200)
    } else {
        (&[10], 3, 6)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "A test's database ready, ms (median of {rounds}); the run's first test, which builds the template unless an earlier run did, ms; then suites, wall time:"
    );
    println!(
        "| backend | N | #[migrate::test] | new database + every migration | ratio | first test |"
    );
    println!("|---|---|---|---|---|---|");
    all::<diesel::SqliteConnection>(sizes, rounds, tests, threads);
    #[cfg(feature = "postgres")]
    if std::env::var_os("MIGRATE_TEST_POSTGRES_URL").is_some() {
        all::<diesel::PgConnection>(sizes, rounds, tests, threads);
    }
    #[cfg(feature = "mysql")]
    if std::env::var_os("MIGRATE_TEST_MYSQL_URL").is_some() {
        all::<diesel::MysqlConnection>(sizes, rounds, tests, threads);
    }
}
