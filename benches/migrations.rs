//! The side-by-side benchmark: this tool against diesel_migrations, a naive
//! runner and the floor, on a SQLite file (and on PostgreSQL when
//! `MIGRATE_BENCH_POSTGRES_URL` is set).
//!
//! `cargo bench --bench migrations` runs it at N = 100 and 1000 and prints a
//! table of medians and ratios. Under `cargo test` (no `--bench` argument)
//! it runs a smoke size, N = 20, once: every contender must work; nothing
//! about time is asserted.
//!
//! Each migration `i` is `CREATE TABLE t_i (id INTEGER PRIMARY KEY, name
//! TEXT NOT NULL)`, with `DROP TABLE t_i` as its down; half of them are SQL
//! migrations and half code scripts. The contenders, alternated in every
//! round:
//! - **ours**: `Migrator::run` (a transaction and a history row per step),
//!   and in atomic mode (the whole plan in one transaction);
//! - **diesel_migrations**: `MigrationHarness::run_pending_migrations` on
//!   the same SQL in diesel's folder layout;
//! - **naive**: one transaction per migration with an insert into a
//!   tracking table, written directly with diesel;
//! - **floor**: every statement in one transaction, no tracking.

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use migrate::{BoxError, MigrationScript, Migrator, Script, Target};

/// A code script creating (and dropping) table `t_i`.
struct CreateTable {
    up: String,
    down: String,
}

impl MigrationScript for CreateTable {
    type Connection = SqliteConnection;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut SqliteConnection) -> Result<(), BoxError> {
        conn.batch_execute(&self.up)?;
        Ok(())
    }

    fn down(&self, conn: &mut SqliteConnection) -> Result<(), BoxError> {
        conn.batch_execute(&self.down)?;
        Ok(())
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn up_sql(i: usize) -> String {
    format!("CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
}

fn down_sql(i: usize) -> String {
    format!("DROP TABLE t_{i};")
}

/// The N migrations, as this tool sees them: version `1.0.i`, even ones
/// SQL, odd ones code.
fn our_scripts(n: usize) -> Vec<Script> {
    (1..=n)
        .map(|i| {
            let version = leak(format!("1.0.{i}"));
            if i % 2 == 0 {
                Script::sql(
                    version,
                    leak(format!("create_t_{i}")),
                    leak(up_sql(i)),
                    Some(leak(down_sql(i))),
                )
            } else {
                let script: &'static CreateTable = Box::leak(Box::new(CreateTable {
                    up: up_sql(i),
                    down: down_sql(i),
                }));
                Script::new(version, script).with_name(leak(format!("create_t_{i}")))
            }
        })
        .collect()
}

/// The same migrations in diesel's layout, under `dir`.
fn diesel_folders(dir: &Path, n: usize) -> FileBasedMigrations {
    for i in 1..=n {
        let folder = dir.join(format!(
            "{:014}_create_t_{i}",
            20_000_000_000_000_u64 + i as u64
        ));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("up.sql"), up_sql(i)).unwrap();
        std::fs::write(folder.join("down.sql"), down_sql(i)).unwrap();
    }
    FileBasedMigrations::from_path(dir).unwrap()
}

/// The naive runner: a transaction per migration, with its tracking row.
fn naive_apply(conn: &mut SqliteConnection, n: usize) {
    conn.batch_execute("CREATE TABLE IF NOT EXISTS naive_history (version TEXT PRIMARY KEY)")
        .unwrap();
    for i in 1..=n {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            c.batch_execute(&up_sql(i))?;
            c.batch_execute(&format!("INSERT INTO naive_history VALUES ('{i}')"))
        })
        .unwrap();
    }
}

/// The naive runner's check: read every applied version.
fn naive_check(conn: &mut SqliteConnection, n: usize) {
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[allow(dead_code)]
        version: String,
    }
    use diesel::RunQueryDsl;
    let rows: Vec<V> = diesel::sql_query("SELECT version FROM naive_history")
        .load(conn)
        .unwrap();
    assert_eq!(rows.len(), n);
}

fn naive_revert(conn: &mut SqliteConnection, n: usize) {
    for i in (1..=n).rev() {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            c.batch_execute(&down_sql(i))?;
            c.batch_execute(&format!("DELETE FROM naive_history WHERE version = '{i}'"))
        })
        .unwrap();
    }
}

/// The floor: every statement in one transaction, nothing tracked.
fn floor_apply(conn: &mut SqliteConnection, n: usize) {
    let all: String = (1..=n).map(up_sql).collect();
    conn.transaction::<_, diesel::result::Error, _>(|c| c.batch_execute(&all))
        .unwrap();
}

fn floor_revert(conn: &mut SqliteConnection, n: usize) {
    let all: String = (1..=n).rev().map(down_sql).collect();
    conn.transaction::<_, diesel::result::Error, _>(|c| c.batch_execute(&all))
        .unwrap();
}

/// The cheapest query a fresh connection can make: one row.
fn one_row(conn: &mut SqliteConnection) {
    conn.batch_execute("SELECT 1 FROM sqlite_schema LIMIT 1")
        .unwrap();
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Ours,
    /// Ours in atomic mode: the whole plan in one transaction.
    OursAtomic,
    Diesel,
    Naive,
    Floor,
}

const ALL: [Who; 5] = [
    Who::Ours,
    Who::OursAtomic,
    Who::Diesel,
    Who::Naive,
    Who::Floor,
];

/// Timings of one contender: apply, no-op fresh, no-op warm, revert.
#[derive(Default)]
struct Samples {
    apply: Vec<Duration>,
    fresh: Vec<Duration>,
    warm: Vec<Duration>,
    revert: Vec<Duration>,
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut s = samples.to_vec();
    s.sort();
    s.get(s.len() / 2).copied()
}

/// One round for `who` on a fresh SQLite file: apply, check fresh, check
/// warm, revert.
fn round(
    who: Who,
    n: usize,
    dir: &Path,
    migrators: &[Migrator; 2],
    diesel: &FileBasedMigrations,
    out: &mut Samples,
) {
    let migrator = if who == Who::OursAtomic {
        &migrators[1]
    } else {
        &migrators[0]
    };
    let file = dir.join(format!("{who:?}.db"));
    let _ = std::fs::remove_file(&file);
    let path = file.to_str().unwrap();
    let mut conn = SqliteConnection::establish(path).unwrap();
    let started = Instant::now();
    match who {
        Who::Ours | Who::OursAtomic => {
            let report = migrator.run(&mut conn).unwrap();
            assert_eq!(report.steps.len(), n);
        }
        Who::Diesel => {
            let ran = conn.run_pending_migrations(diesel.clone()).unwrap();
            assert_eq!(ran.len(), n);
        }
        Who::Naive => naive_apply(&mut conn, n),
        Who::Floor => floor_apply(&mut conn, n),
    }
    out.apply.push(started.elapsed());
    drop(conn);
    // What a process pays at boot: open, check, done.
    let started = Instant::now();
    let mut conn = SqliteConnection::establish(path).unwrap();
    let check = |conn: &mut SqliteConnection| match who {
        Who::Ours | Who::OursAtomic => assert!(migrator.run(conn).unwrap().steps.is_empty()),
        Who::Diesel => assert!(!conn.has_pending_migration(diesel.clone()).unwrap()),
        Who::Naive => naive_check(conn, n),
        Who::Floor => one_row(conn),
    };
    check(&mut conn);
    out.fresh.push(started.elapsed());
    // Again, on the warm connection.
    let started = Instant::now();
    check(&mut conn);
    out.warm.push(started.elapsed());
    let started = Instant::now();
    match who {
        Who::Ours | Who::OursAtomic => {
            let report = migrator
                .run_to(&mut conn, Some(Target::DownSteps(n)))
                .unwrap();
            assert_eq!(report.steps.len(), n);
        }
        Who::Diesel => {
            conn.revert_all_migrations(diesel.clone()).unwrap();
        }
        Who::Naive => naive_revert(&mut conn, n),
        Who::Floor => floor_revert(&mut conn, n),
    }
    out.revert.push(started.elapsed());
}

/// Which of a contender's samples a table row shows.
type Pick = fn(&Samples) -> &Vec<Duration>;

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.3}", d.as_secs_f64() * 1000.0),
    )
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > Duration::ZERO => {
            format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
        }
        _ => "-".to_owned(),
    }
}

fn bench(n: usize, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let migrator = Migrator::new("0.0.0")
        .only_listed_scripts()
        .app_version(format!("1.0.{n}"))
        .scripts(our_scripts(n));
    let migrators = [migrator.clone(), migrator.atomic(true)];
    let diesel = diesel_folders(&dir.path().join("diesel"), n);
    let mut samples: Vec<Samples> = ALL.iter().map(|_| Samples::default()).collect();
    for r in 0..rounds {
        // Alternate the order, so that no contender always goes first.
        for k in 0..ALL.len() {
            let i = (k + r) % ALL.len();
            round(ALL[i], n, dir.path(), &migrators, &diesel, &mut samples[i]);
        }
    }
    let m = |who: Who, f: Pick| median(f(&samples[ALL.iter().position(|w| *w == who).unwrap()]));
    println!("\nSQLite file, N = {n}, {rounds} rounds, medians in ms:");
    println!(
        "| | ours | ours, atomic | diesel_migrations | naive | floor | ours / diesel_migrations | ours / naive | ours / floor | atomic / floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let rows: [(&str, Pick); 4] = [
        ("apply all", |s| &s.apply),
        ("no-op check, fresh connection", |s| &s.fresh),
        ("no-op check, warm connection", |s| &s.warm),
        ("revert all", |s| &s.revert),
    ];
    for (label, f) in rows {
        let (o, a, d, nv, fl) = (
            m(Who::Ours, f),
            m(Who::OursAtomic, f),
            m(Who::Diesel, f),
            m(Who::Naive, f),
            m(Who::Floor, f),
        );
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(o),
            ms(a),
            ms(d),
            ms(nv),
            ms(fl),
            ratio(o, d),
            ratio(o, nv),
            ratio(o, fl),
            ratio(a, fl)
        );
    }
    println!("(floor's no-op column is the cheapest single-row query on a fresh connection)");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if full {
        let rounds: usize = std::env::var("MIGRATE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(7);
        for n in [100, 1000] {
            bench(n, rounds);
        }
    } else {
        // The smoke test: every contender works; no time is asserted.
        bench(20, 1);
    }
}
