//! The side-by-side benchmark: this tool against diesel_migrations, a naive
//! runner and the floor, on a SQLite file, and on PostgreSQL when
//! `MIGRATE_BENCH_POSTGRES_URL` is set (build with `--features postgres`).
//!
//! `cargo bench --bench migrations` runs it at N = 100 and 1000 and prints a
//! table of medians and ratios, then the start-up table (N = 100, 1000 and
//! 10000: the state row, the full read of the history, diesel_migrations,
//! a plain read and the planner; also `MIGRATE_BENCH_STARTUP=<rounds>`
//! alone), then the peak memory of applying N = 10000
//! (`MIGRATE_BENCH_MEMORY=<n>` alone).
//! Under `cargo test` (no `--bench` argument) it runs a smoke size, N = 20,
//! once: every contender must work; nothing about time is asserted.
//!
//! Each migration `i` is `CREATE TABLE t_i (id INTEGER PRIMARY KEY, name
//! TEXT NOT NULL)`, with `DROP TABLE t_i` as its down; half of them are SQL
//! migrations and half code scripts. The contenders, alternated in every
//! round, each on a fresh database:
//! - **ours**: `Migrator::run` (a transaction and a history row per step),
//!   and in atomic mode (the whole plan in one transaction), over the
//!   scripts listed by hand (built at run time, as N varies);
//! - **ours, registered** (SQLite only): the same, over the migrations of
//!   the `bench-scripts` crate, which an application's path registers:
//!   generated `#[migration_script]` structs and `embed_sql!` folders,
//!   1000 of them, of which the application version `1.0.N` takes the
//!   first N;
//! - **diesel_migrations**: `MigrationHarness::run_pending_migrations` on
//!   the same SQL, embedded as `embed_migrations!` embeds it;
//! - **naive**: one transaction per migration with an insert into a
//!   tracking table, written directly with diesel;
//! - **floor**: every statement in one transaction, no tracking.
//!
//! The no-op check is measured on a fresh connection with a new `Migrator`
//! (what a process pays at boot), then again on that warm connection.
//!
//! Two loops take one measurement each, with more samples, for a profiler
//! or a noisy machine: `MIGRATE_BENCH_BOOT_LOOP=<rounds>` (the no-op check
//! at boot) and `MIGRATE_BENCH_APPLY_LOOP=<rounds>` (applying N = 1000,
//! ours against naive within each round, on SQLite and, given its URL, on
//! PostgreSQL).

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{
    EmbeddedMigration, EmbeddedMigrations, EmbeddedName, MigrationHarness, TomlMetadataWrapper,
};
use migrate::backend::Backend;
use migrate::{BoxError, MigrationScript, Migrator, Script, Target};

// Links the registered migrations (`#[migration_script]` and `embed_sql!`).
use bench_scripts as _;

/// What the benchmark needs from a database.
trait Db: Backend + SimpleConnection + MigrationHarness<<Self as Connection>::Backend> {
    /// For the table's title.
    const LABEL: &'static str;
    /// The cheapest query that returns one row, as an application's first
    /// query would (on SQLite it reads the schema, as every first query does).
    const ONE_ROW: &'static str;
    /// Whether `bench-scripts` registered its migrations for this
    /// connection type.
    const REGISTERED: bool;
}

impl Db for SqliteConnection {
    const LABEL: &'static str = "SQLite file";
    const ONE_ROW: &'static str = "SELECT 1 FROM sqlite_schema LIMIT 1";
    const REGISTERED: bool = true;
}

#[cfg(feature = "postgres")]
impl Db for diesel::PgConnection {
    const LABEL: &'static str = "PostgreSQL";
    const ONE_ROW: &'static str = "SELECT 1";
    const REGISTERED: bool = false;
}

/// A code script creating (and dropping) table `t_i`.
struct CreateTable<C> {
    up: String,
    down: String,
    conn: PhantomData<fn() -> C>,
}

impl<C: Db> MigrationScript for CreateTable<C> {
    type Connection = C;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut C) -> Result<(), BoxError> {
        conn.batch_execute(&self.up)?;
        Ok(())
    }

    fn down(&self, conn: &mut C) -> Result<(), BoxError> {
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
fn our_scripts<C: Db>(n: usize) -> Vec<Script> {
    (1..=n)
        .map(|i| {
            let version = leak(format!("1.0.{i}"));
            let name = leak(format!("create_t_{i}"));
            if i % 2 == 0 {
                Script::sql(version, name, leak(up_sql(i)), Some(leak(down_sql(i))))
            } else {
                let script: &'static CreateTable<C> = Box::leak(Box::new(CreateTable {
                    up: up_sql(i),
                    down: down_sql(i),
                    conn: PhantomData,
                }));
                Script::new(version, script).with_name(name)
            }
        })
        .collect()
}

/// What an application builds at boot: a new migrator for its scripts,
/// listed by hand, or registered (`who` is [`Who::Registered`]).
fn migrator(who: Who, scripts: &[Script]) -> Migrator {
    let app = Migrator::new("0.0.0").app_version(format!("1.0.{}", scripts.len()));
    match who {
        Who::Registered => app,
        _ => app
            .only_listed_scripts()
            .scripts(scripts.iter().copied())
            .atomic(who == Who::OursAtomic),
    }
}

/// The same migrations as diesel_migrations' `embed_migrations!` embeds
/// them (built here at run time through the same types, since N varies).
fn diesel_migrations(n: usize) -> &'static [EmbeddedMigration] {
    let all: Vec<EmbeddedMigration> = (1..=n)
        .map(|i| {
            EmbeddedMigration::new(
                leak(up_sql(i)),
                Some(leak(down_sql(i))),
                EmbeddedName::new(leak(format!(
                    "{}_create_t_{i}",
                    20_000_000_000_000_u64 + i as u64
                ))),
                TomlMetadataWrapper::new(true),
            )
        })
        .collect();
    Box::leak(all.into_boxed_slice())
}

/// The naive runner: a transaction per migration, with its tracking row.
fn naive_apply<C: Db>(conn: &mut C, n: usize) {
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
fn naive_check<C: Db>(conn: &mut C, n: usize) {
    let sql = "SELECT version AS s FROM naive_history";
    assert_eq!(conn.strings(sql).unwrap().len(), n);
}

fn naive_revert<C: Db>(conn: &mut C, n: usize) {
    for i in (1..=n).rev() {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            c.batch_execute(&down_sql(i))?;
            c.batch_execute(&format!("DELETE FROM naive_history WHERE version = '{i}'"))
        })
        .unwrap();
    }
}

/// The floor: every statement in one transaction, nothing tracked.
fn floor_apply<C: Db>(conn: &mut C, n: usize) {
    let all: String = (1..=n).map(up_sql).collect();
    conn.transaction::<_, diesel::result::Error, _>(|c| c.batch_execute(&all))
        .unwrap();
}

/// The floor as a runner of steps must send them: one transaction, but
/// each statement its own message (a round trip each). Only in the apply
/// loop, beside atomic mode, to tell the protocol's cost of a message per
/// step from ours.
fn floor_steps_apply<C: Db>(conn: &mut C, n: usize) {
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        (1..=n).try_for_each(|i| c.batch_execute(&up_sql(i)))
    })
    .unwrap();
}

fn floor_revert<C: Db>(conn: &mut C, n: usize) {
    let all: String = (1..=n).rev().map(down_sql).collect();
    conn.transaction::<_, diesel::result::Error, _>(|c| c.batch_execute(&all))
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
    /// The floor, a message per statement ([`floor_steps_apply`]; the
    /// apply loop only).
    FloorSteps,
    /// Ours over the registered migrations of `bench-scripts`.
    Registered,
}

/// Every contender; its samples are kept at its place here.
const ALL: [Who; 6] = [
    Who::Ours,
    Who::Naive,
    Who::Registered,
    Who::OursAtomic,
    Who::Diesel,
    Who::Floor,
];

/// Ours (listed), naive and ours (registered) in round `r`: the six orders
/// in turn, so that over six rounds each runs first, between and last
/// equally often. (With naive always between the two, as before, only ours
/// and registered ever followed a different contender.)
fn paired_order(r: usize) -> [Who; 3] {
    let mut three = [Who::Ours, Who::Naive, Who::Registered];
    three.rotate_left(r % 3);
    if (r / 3) % 2 == 1 {
        three.reverse();
    }
    three
}

/// The order of round `r`: the three of [`paired_order`] back to back, so
/// that their per-round ratios compare runs made under nearly the same
/// disk load, taking each place among the other contenders in turn.
fn round_order(r: usize) -> Vec<Who> {
    let mut order = vec![Who::OursAtomic, Who::Diesel, Who::Floor];
    let at = r % (order.len() + 1);
    order.splice(at..at, paired_order(r));
    order
}

impl Who {
    /// Whether this contender runs on `C` at size `n`.
    fn runs_on<C: Db>(self, n: usize) -> bool {
        self != Who::Registered || (C::REGISTERED && n <= bench_scripts::N)
    }

    fn parse(name: &str) -> Who {
        *ALL.iter()
            .find(|w| format!("{w:?}") == name)
            .unwrap_or_else(|| panic!("no contender `{name}`"))
    }

    fn apply<C: Db>(self, conn: &mut C, scripts: &[Script], diesel: &'static [EmbeddedMigration]) {
        let n = scripts.len();
        match self {
            Who::Ours | Who::OursAtomic | Who::Registered => {
                let report = migrator(self, scripts).run(conn).unwrap();
                assert_eq!(report.steps.len(), n);
            }
            Who::Diesel => {
                let ran = conn
                    .run_pending_migrations(EmbeddedMigrations::new(diesel))
                    .unwrap();
                assert_eq!(ran.len(), n);
            }
            Who::Naive => naive_apply(conn, n),
            Who::Floor => floor_apply(conn, n),
            Who::FloorSteps => floor_steps_apply(conn, n),
        }
    }
}

/// Timings of one contender: apply, no-op fresh, no-op warm, revert, and
/// the processor time of apply and revert.
#[derive(Default)]
struct Samples {
    apply: Vec<Duration>,
    fresh: Vec<Duration>,
    warm: Vec<Duration>,
    revert: Vec<Duration>,
    apply_cpu: Vec<Duration>,
    revert_cpu: Vec<Duration>,
}

/// The processor time (user and system) this process has used so far. It
/// leaves out the time spent waiting for the disk, which is where a shared
/// machine's noise is: it shows what each contender itself does per step.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn median(samples: &[Duration]) -> Option<Duration> {
    let mut s = samples.to_vec();
    s.sort();
    s.get(s.len() / 2).copied()
}

/// Where the rounds run: a fresh, empty database for each.
trait Place {
    /// The URL of a fresh, empty database for `who`.
    fn fresh(&self, who: Who) -> String;
}

struct SqliteDir(tempfile::TempDir);

impl Place for SqliteDir {
    fn fresh(&self, who: Who) -> String {
        let file = self.0.path().join(format!("{who:?}.db"));
        let _ = std::fs::remove_file(&file);
        file.to_str().unwrap().to_owned()
    }
}

#[cfg(feature = "postgres")]
struct PgServer(String);

#[cfg(feature = "postgres")]
impl Place for PgServer {
    fn fresh(&self, who: Who) -> String {
        let name = format!("migrate_bench_{who:?}").to_lowercase();
        let mut admin = diesel::PgConnection::establish(&self.0)
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {}: {e}", self.0));
        // One statement each: PostgreSQL runs a multi-statement string as
        // one transaction, which these refuse.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = self.0.rsplit_once('/').map_or(&*self.0, |(b, _)| b);
        format!("{base}/{name}")
    }
}

/// One round for `who` on a fresh database: apply, check fresh, check
/// warm, revert.
fn round<C: Db>(
    who: Who,
    place: &dyn Place,
    scripts: &[Script],
    diesel: &'static [EmbeddedMigration],
    out: &mut Samples,
) {
    let n = scripts.len();
    let url = place.fresh(who);
    let mut conn = C::establish(&url).unwrap();
    let (started, cpu) = (Instant::now(), cpu_time());
    who.apply(&mut conn, scripts, diesel);
    out.apply.push(started.elapsed());
    out.apply_cpu.push(cpu_time() - cpu);
    drop(conn);
    // What a process pays at boot: open, build the migrator, check, done.
    let started = Instant::now();
    let mut conn = C::establish(&url).unwrap();
    let boot = migrator(who, scripts);
    let check = |conn: &mut C| match who {
        Who::Ours | Who::OursAtomic | Who::Registered => {
            let report = boot.run(conn).unwrap();
            assert!(report.steps.is_empty() && report.fast_path, "{report}");
        }
        Who::Diesel => assert!(
            !conn
                .has_pending_migration(EmbeddedMigrations::new(diesel))
                .unwrap()
        ),
        Who::Naive => naive_check(conn, n),
        Who::Floor | Who::FloorSteps => conn.batch_execute(C::ONE_ROW).unwrap(),
    };
    check(&mut conn);
    out.fresh.push(started.elapsed());
    // Again, on the warm connection (the same migrator).
    let started = Instant::now();
    check(&mut conn);
    out.warm.push(started.elapsed());
    let (started, cpu) = (Instant::now(), cpu_time());
    match who {
        Who::Ours | Who::OursAtomic | Who::Registered => {
            let report = boot.run_to(&mut conn, Some(Target::DownSteps(n))).unwrap();
            assert_eq!(report.steps.len(), n);
        }
        Who::Diesel => {
            conn.revert_all_migrations(EmbeddedMigrations::new(diesel))
                .unwrap();
        }
        Who::Naive => naive_revert(&mut conn, n),
        Who::Floor | Who::FloorSteps => floor_revert(&mut conn, n),
    }
    out.revert.push(started.elapsed());
    out.revert_cpu.push(cpu_time() - cpu);
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

fn bench<C: Db>(place: &dyn Place, n: usize, rounds: usize) {
    let scripts = our_scripts::<C>(n);
    let diesel = diesel_migrations(n);
    let mut samples: Vec<Samples> = ALL.iter().map(|_| Samples::default()).collect();
    let at = |who: Who| ALL.iter().position(|w| *w == who).unwrap();
    for r in 0..rounds {
        for who in round_order(r) {
            if who.runs_on::<C>(n) {
                round::<C>(who, place, &scripts, diesel, &mut samples[at(who)]);
            }
        }
    }
    let m = |who: Who, f: Pick| median(f(&samples[at(who)]));
    println!("\n{}, N = {n}, {rounds} rounds, medians in ms:", C::LABEL);
    println!(
        "| | ours | ours, atomic | diesel_migrations | naive | floor | ours / diesel_migrations | ours / naive | ours / floor | atomic / floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let rows: [(&str, Pick); 6] = [
        ("apply all", |s| &s.apply),
        ("no-op check, fresh connection", |s| &s.fresh),
        ("no-op check, warm connection", |s| &s.warm),
        ("revert all", |s| &s.revert),
        ("apply all, processor time", |s| &s.apply_cpu),
        ("revert all, processor time", |s| &s.revert_cpu),
    ];
    for (label, f) in &rows {
        let f = *f;
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
    println!(
        "(the floor's no-op columns are `{}`, on a fresh and on the warm connection)",
        C::ONE_ROW
    );
    if Who::Registered.runs_on::<C>(n) {
        println!(
            "\nThe same N migrations registered by `#[migration_script]` and `embed_sql!` \
             ({} in the binary), medians in ms:",
            bench_scripts::N
        );
        println!(
            "| | ours, registered | registered / ours | registered / diesel_migrations | registered / naive | registered / floor |"
        );
        println!("|---|---|---|---|---|---|");
        for (label, f) in rows {
            let g = m(Who::Registered, f);
            println!(
                "| {label} | {} | {} | {} | {} | {} |",
                ms(g),
                ratio(g, m(Who::Ours, f)),
                ratio(g, m(Who::Diesel, f)),
                ratio(g, m(Who::Naive, f)),
                ratio(g, m(Who::Floor, f))
            );
        }
    }
    // The disk's noise moves whole rounds; a ratio taken within each round,
    // of runs made one after the other, cancels much of it.
    let paired = |who: Who, f: Pick| {
        let (ours, naive) = (f(&samples[at(who)]), f(&samples[at(Who::Naive)]));
        let ratios: Vec<f64> = ours
            .iter()
            .zip(naive)
            .map(|(o, n)| o.as_secs_f64() / n.as_secs_f64())
            .collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        format!("{:.2} ({})", sorted[sorted.len() / 2], each.join(", "))
    };
    println!(
        "ours / naive within each round, median (each round): apply {}; revert {}",
        paired(Who::Ours, |s| &s.apply),
        paired(Who::Ours, |s| &s.revert)
    );
    if Who::Registered.runs_on::<C>(n) {
        println!(
            "registered / naive within each round, median (each round): apply {}; revert {}",
            paired(Who::Registered, |s| &s.apply),
            paired(Who::Registered, |s| &s.revert)
        );
    }
}

/// The child process of the memory measurement: applies N migrations with
/// one contender on a fresh SQLite file and prints its peak resident set.
const MEMORY_CHILD: &str = "MIGRATE_BENCH_MEMORY_CHILD";

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn memory_child(spec: &str) {
    let (who, n) = spec.split_once(':').unwrap();
    let (who, n) = (Who::parse(who), n.parse::<usize>().unwrap());
    let place = SqliteDir(tempfile::tempdir().unwrap());
    let scripts = our_scripts::<SqliteConnection>(n);
    let diesel = diesel_migrations(n);
    let before = peak_rss_kib();
    let mut conn = SqliteConnection::establish(&place.fresh(who)).unwrap();
    who.apply(&mut conn, &scripts, diesel);
    println!("{before} {}", peak_rss_kib());
}

/// Peak resident memory of applying N migrations, each contender in a
/// process of its own (the same binary, so the same baseline).
fn memory(n: usize) {
    println!("\nPeak resident memory, applying N = {n} on a SQLite file, MiB:");
    let who: Vec<Who> = [
        Who::Ours,
        Who::OursAtomic,
        Who::Diesel,
        Who::Naive,
        Who::Floor,
        Who::Registered,
    ]
    .into_iter()
    .filter(|w| w.runs_on::<SqliteConnection>(n))
    .collect();
    let names: Vec<String> = who.iter().map(|w| format!("{w:?}")).collect();
    println!("| | {} | ours / naive |", names.join(" | "));
    println!("|---|{}---|", "---|".repeat(who.len()));
    let peaks: Vec<(f64, f64)> = who
        .iter()
        .map(|who| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .env(MEMORY_CHILD, format!("{who:?}:{n}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let text = String::from_utf8(out.stdout).unwrap();
            let mut kib = text
                .split_whitespace()
                .map(|k| k.parse::<f64>().unwrap() / 1024.0);
            (kib.next().unwrap(), kib.next().unwrap())
        })
        .collect();
    let at = |w: Who| who.iter().position(|x| *x == w).unwrap();
    let row = |label: &str, f: fn(&(f64, f64)) -> f64| {
        let cells: Vec<String> = peaks.iter().map(|p| format!("{:.1}", f(p))).collect();
        let ratio = f(&peaks[at(Who::Ours)]) / f(&peaks[at(Who::Naive)]);
        println!("| {label} | {} | {ratio:.2} |", cells.join(" | "));
    };
    row("peak, whole process", |p| p.1);
    row("growth while applying", |p| p.1 - p.0);
}

/// For a profiler: boots a new migrator `rounds` times against a settled
/// SQLite file, on one warm connection and then each on a fresh one (beside
/// the one-row query and diesel_migrations' check on a fresh connection),
/// and prints the means; with the scripts listed by hand, then registered.
fn boot_loop(n: usize, rounds: usize) {
    let place = SqliteDir(tempfile::tempdir().unwrap());
    let scripts = our_scripts::<SqliteConnection>(n);
    let mean = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0 / rounds as f64);
    let who = [Who::Ours, Who::Registered];
    let urls = who.map(|w| place.fresh(w));
    for (w, url) in who.iter().zip(&urls) {
        let mut conn = SqliteConnection::establish(url).unwrap();
        migrator(*w, &scripts).run(&mut conn).unwrap();
        let started = Instant::now();
        for _ in 0..rounds {
            let report = migrator(*w, &scripts).run(&mut conn).unwrap();
            assert!(report.fast_path);
        }
        println!(
            "N = {n}, {w:?}: new migrator + check, warm connection: {}",
            mean(started.elapsed())
        );
        let same = migrator(*w, &scripts);
        let started = Instant::now();
        for _ in 0..rounds {
            assert!(same.run(&mut conn).unwrap().fast_path);
        }
        println!(
            "N = {n}, {w:?}: the same migrator's check, warm connection: {}",
            mean(started.elapsed())
        );
    }
    let diesel = diesel_migrations(n);
    let diesel_url = place.fresh(Who::Diesel);
    let mut conn = SqliteConnection::establish(&diesel_url).unwrap();
    conn.run_pending_migrations(EmbeddedMigrations::new(diesel))
        .unwrap();
    drop(conn);
    let (mut ours, mut one_row, mut theirs) = ([Duration::ZERO; 2], Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let started = Instant::now();
        let mut conn = SqliteConnection::establish(&urls[0]).unwrap();
        conn.batch_execute(SqliteConnection::ONE_ROW).unwrap();
        one_row += started.elapsed();
        drop(conn);
        let started = Instant::now();
        let mut conn = SqliteConnection::establish(&diesel_url).unwrap();
        assert!(
            !conn
                .has_pending_migration(EmbeddedMigrations::new(diesel))
                .unwrap()
        );
        theirs += started.elapsed();
        drop(conn);
        for (k, w) in who.iter().enumerate() {
            let started = Instant::now();
            let mut conn = SqliteConnection::establish(&urls[k]).unwrap();
            assert!(
                migrator(*w, &scripts)
                    .run(&mut conn)
                    .unwrap()
                    .steps
                    .is_empty()
            );
            ours[k] += started.elapsed();
        }
    }
    println!(
        "N = {n}: fresh connection + one-row query: {}",
        mean(one_row)
    );
    println!(
        "N = {n}: fresh connection + diesel_migrations' check: {}",
        mean(theirs)
    );
    for (k, w) in who.iter().enumerate() {
        println!(
            "N = {n}, {w:?}: fresh connection + new migrator + check: {} ({:.3}x the one-row query, {:.3}x diesel_migrations)",
            mean(ours[k]),
            ours[k].as_secs_f64() / one_row.as_secs_f64(),
            ours[k].as_secs_f64() / theirs.as_secs_f64()
        );
    }
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("MIGRATE_BENCH_POSTGRES_URL") {
        use diesel::PgConnection;
        let scripts = our_scripts::<PgConnection>(n);
        let mut conn = PgConnection::establish(&PgServer(url).fresh(Who::Ours)).unwrap();
        let same = migrator(Who::Ours, &scripts);
        same.run(&mut conn).unwrap();
        let (mut ours, mut one_row) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            let started = Instant::now();
            conn.batch_execute(PgConnection::ONE_ROW).unwrap();
            one_row += started.elapsed();
            let started = Instant::now();
            assert!(same.run(&mut conn).unwrap().fast_path);
            ours += started.elapsed();
        }
        println!("N = {n}: PostgreSQL, warm, `SELECT 1`: {}", mean(one_row));
        println!(
            "N = {n}: PostgreSQL, warm, the same migrator's check: {}",
            mean(ours)
        );
    }
}

/// A SQLite file with the first `n` migrations applied by `who`, written
/// without waiting for the disk (only the state matters here).
fn settled_file(
    place: &dyn Place,
    who: Who,
    scripts: &[Script],
    diesel: &'static [EmbeddedMigration],
) -> String {
    let url = place.fresh(who);
    let mut conn = SqliteConnection::establish(&url).unwrap();
    conn.batch_execute("PRAGMA synchronous = OFF").unwrap();
    match who {
        Who::Diesel => {
            conn.run_pending_migrations(EmbeddedMigrations::new(diesel))
                .unwrap();
        }
        _ => {
            let report = migrator(Who::OursAtomic, scripts).run(&mut conn).unwrap();
            assert_eq!(report.steps.len(), scripts.len());
        }
    }
    url
}

/// The start-up check, phase by phase, on a SQLite file at N = 100, 1000
/// and 10000, each on a database settled at the application version: what
/// a booting process pays (a fresh connection and a new `Migrator`), beside
/// the one-row query, diesel_migrations' check, a plain read of every
/// applied version and the planner alone; then, on the warm connection,
/// the check, `status` and a new `Migrator`'s first check. Medians, in ms,
/// of `rounds` (scaled down for the larger N), the contenders alternating.
fn startup_table(rounds: usize) {
    use migrate::plan::AppliedScript;
    use migrate::plan::PlanOptions;
    use migrate::plan::plan;
    use migrate::registry::Registry;
    println!("\nThe start-up check, SQLite file, medians in ms:");
    println!(
        "| N | one-row query, fresh | `run` (state row), fresh | `run_to` (reads the history), fresh | `run_to` / `run` | diesel_migrations no-op, fresh | `run` / diesel_migrations | `run_to` / diesel_migrations | plain read of every version, warm | planner alone | `run_to`, warm | `run_to` / (read + planner) | `status`, warm | new `Migrator` + first check, warm |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let place = SqliteDir(tempfile::tempdir().unwrap());
    for n in [100, 1000, 10_000] {
        let rounds = (rounds * 1000 / n).clamp(5, rounds);
        let scripts = our_scripts::<SqliteConnection>(n);
        let diesel = diesel_migrations(n);
        let ours = settled_file(&place, Who::Ours, &scripts, diesel);
        let theirs = settled_file(&place, Who::Diesel, &scripts, diesel);
        let known = Registry::new(scripts.iter().copied()).unwrap().known();
        let applied: Vec<AppliedScript> = known
            .iter()
            .map(|k| AppliedScript {
                checksum: k.checksum.as_deref().map(str::to_owned),
                ..AppliedScript::new(k.version.clone(), k.name.to_string())
            })
            .collect();
        let target = Target::UpTo(known.last().unwrap().version.clone());
        // Each row's samples, in the table's order.
        let mut samples: [Vec<Duration>; 9] = Default::default();
        let time = |f: &mut dyn FnMut()| {
            let started = Instant::now();
            f();
            started.elapsed()
        };
        let mut warm = SqliteConnection::establish(&ours).unwrap();
        let same = migrator(Who::Ours, &scripts);
        same.run(&mut warm).unwrap();
        for _ in 0..rounds {
            samples[0].push(time(&mut || {
                let mut conn = SqliteConnection::establish(&ours).unwrap();
                conn.batch_execute(SqliteConnection::ONE_ROW).unwrap();
            }));
            samples[1].push(time(&mut || {
                let mut conn = SqliteConnection::establish(&ours).unwrap();
                let report = migrator(Who::Ours, &scripts).run(&mut conn).unwrap();
                assert!(report.steps.is_empty() && report.fast_path);
            }));
            samples[8].push(time(&mut || {
                let mut conn = SqliteConnection::establish(&ours).unwrap();
                let report = migrator(Who::Ours, &scripts)
                    .run_to(&mut conn, None)
                    .unwrap();
                assert!(report.steps.is_empty() && !report.fast_path);
            }));
            samples[2].push(time(&mut || {
                let mut conn = SqliteConnection::establish(&theirs).unwrap();
                assert!(
                    !conn
                        .has_pending_migration(EmbeddedMigrations::new(diesel))
                        .unwrap()
                );
            }));
            samples[3].push(time(&mut || {
                let versions = warm
                    .strings("SELECT version AS s FROM migrate_history")
                    .unwrap();
                assert_eq!(versions.len(), n);
            }));
            samples[4].push(time(&mut || {
                let p = plan(&target, &applied, &known, PlanOptions::default()).unwrap();
                assert!(p.is_empty());
            }));
            samples[5].push(time(&mut || {
                assert!(same.run_to(&mut warm, None).unwrap().steps.is_empty());
            }));
            samples[6].push(time(&mut || {
                assert_eq!(same.status(&mut warm).unwrap().rows.len(), n);
            }));
            samples[7].push(time(&mut || {
                let report = migrator(Who::Ours, &scripts).run(&mut warm).unwrap();
                assert!(report.steps.is_empty());
            }));
        }
        let m: Vec<Duration> = samples.iter().map(|s| median(s).unwrap()).collect();
        let read_and_plan = Some(m[3] + m[4]);
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(Some(m[0])),
            ms(Some(m[1])),
            ms(Some(m[8])),
            ratio(Some(m[8]), Some(m[1])),
            ms(Some(m[2])),
            ratio(Some(m[1]), Some(m[2])),
            ratio(Some(m[8]), Some(m[2])),
            ms(Some(m[3])),
            ms(Some(m[4])),
            ms(Some(m[5])),
            ratio(Some(m[5]), read_and_plan),
            ms(Some(m[6])),
            ms(Some(m[7])),
        );
    }
}

/// For a profiler (`valgrind --tool=callgrind`): `n` migrations settled on
/// a SQLite file, then `rounds` of one thing: what a booting process pays
/// (`fresh`: a connection, a new migrator, its check, which reads the state
/// row; `fresh_full`: the same through `run_to`, which reads the history's
/// rows), the one-row query on
/// a fresh connection (`one_row`), diesel_migrations' check on one
/// (`diesel`), warm checks by one migrator (`run_to`) or by a new one each
/// (`boot`), or `status` calls.
fn profile(spec: &str) {
    let mut parts = spec.split(':');
    let (what, n, rounds) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
    );
    let place = SqliteDir(tempfile::tempdir().unwrap());
    let scripts = our_scripts::<SqliteConnection>(n);
    let diesel = diesel_migrations(n);
    let url = settled_file(&place, Who::Ours, &scripts, diesel);
    let theirs = settled_file(&place, Who::Diesel, &scripts, diesel);
    let mut conn = SqliteConnection::establish(&url).unwrap();
    let same = migrator(Who::Ours, &scripts);
    same.run(&mut conn).unwrap();
    for _ in 0..rounds {
        match what {
            "fresh" => {
                let mut conn = SqliteConnection::establish(&url).unwrap();
                let report = migrator(Who::Ours, &scripts).run(&mut conn).unwrap();
                assert!(report.steps.is_empty() && report.fast_path);
            }
            "fresh_full" => {
                let mut conn = SqliteConnection::establish(&url).unwrap();
                let report = migrator(Who::Ours, &scripts)
                    .run_to(&mut conn, None)
                    .unwrap();
                assert!(report.steps.is_empty() && !report.fast_path);
            }
            "one_row" => {
                let mut conn = SqliteConnection::establish(&url).unwrap();
                conn.batch_execute(SqliteConnection::ONE_ROW).unwrap();
            }
            "diesel" => {
                let mut conn = SqliteConnection::establish(&theirs).unwrap();
                assert!(
                    !conn
                        .has_pending_migration(EmbeddedMigrations::new(diesel))
                        .unwrap()
                );
            }
            "run_to" => assert!(same.run_to(&mut conn, None).unwrap().steps.is_empty()),
            "boot" => assert!(
                migrator(Who::Ours, &scripts)
                    .run(&mut conn)
                    .unwrap()
                    .steps
                    .is_empty()
            ),
            "status" => assert_eq!(same.status(&mut conn).unwrap().rows.len(), n),
            other => panic!(
                "no profile `{other}`: fresh, fresh_full, one_row, diesel, run_to, boot or status"
            ),
        }
    }
}

/// For the apply targets on a noisy machine: applies N migrations on fresh
/// databases `rounds` times with ours (listed), naive and, on SQLite, ours
/// (registered), in [`paired_order`]; then ours in atomic mode, the floor
/// and the floor a message per statement, in orders that rotate each round.
/// It prints the ratios taken within each round (ours and registered to
/// naive; atomic to the floor and to the floor a message per statement):
/// their median and quartiles, of the wall time and of the processor time.
fn apply_loop<C: Db>(place: &dyn Place, n: usize, rounds: usize) {
    let scripts = our_scripts::<C>(n);
    let diesel = diesel_migrations(n);
    let all = [
        Who::Ours,
        Who::Naive,
        Who::Registered,
        Who::OursAtomic,
        Who::Floor,
        Who::FloorSteps,
    ];
    // The ratios printed: a contender, the one it is compared with, and
    // the target (`None`: no target, for the analysis).
    let ratios = [
        (Who::Ours, Who::Naive, Some(1.1)),
        (Who::Registered, Who::Naive, Some(1.1)),
        (Who::OursAtomic, Who::Floor, Some(1.5)),
        (Who::FloorSteps, Who::Floor, None),
        (Who::OursAtomic, Who::FloorSteps, None),
    ];
    let at = |who: Who| all.iter().position(|w| *w == who).unwrap();
    // Per contender (in `all`'s order): each round's (wall, processor).
    let mut times: Vec<Vec<(f64, f64)>> = vec![Vec::new(); all.len()];
    for r in 0..rounds {
        let mut atomic = [Who::OursAtomic, Who::Floor, Who::FloorSteps];
        atomic.rotate_left(r % 3);
        let order = paired_order(r).into_iter().chain(atomic);
        for who in order.filter(|w| w.runs_on::<C>(n)) {
            let mut conn = C::establish(&place.fresh(who)).unwrap();
            let (started, cpu) = (Instant::now(), cpu_time());
            who.apply(&mut conn, &scripts, diesel);
            times[at(who)].push((
                started.elapsed().as_secs_f64(),
                (cpu_time() - cpu).as_secs_f64(),
            ));
        }
    }
    let quartiles = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: usize| v[(v.len() - 1) * q / 4];
        (at(1), at(2), at(3))
    };
    println!(
        "{}, apply N = {n}, {rounds} rounds (median ms; ratios within each round: median, quartiles):",
        C::LABEL
    );
    for (k, who) in all.iter().enumerate() {
        if times[k].is_empty() {
            continue;
        }
        let (_, wall, _) = quartiles(times[k].iter().map(|t| t.0 * 1000.0).collect());
        let (_, cpu, _) = quartiles(times[k].iter().map(|t| t.1 * 1000.0).collect());
        println!("{who:?}: wall {wall:.1} ms, processor {cpu:.1} ms");
    }
    for (who, reference, target) in ratios {
        let (mine, base) = (&times[at(who)], &times[at(reference)]);
        if mine.is_empty() {
            continue;
        }
        let per_round = |f: fn(&(f64, f64)) -> f64| {
            let ratios: Vec<f64> = mine.iter().zip(base).map(|(a, b)| f(a) / f(b)).collect();
            let within = target.map_or(String::new(), |t: f64| {
                let n = ratios.iter().filter(|r| **r <= t).count();
                format!("; {n} of {rounds} rounds at most {t}")
            });
            let (q1, m, q3) = quartiles(ratios);
            format!("{m:.3} ({q1:.3}-{q3:.3}{within})")
        };
        println!(
            "{who:?} / {reference:?}: wall {}, processor {}",
            per_round(|t| t.0),
            per_round(|t| t.1)
        );
    }
}

/// [`apply_loop`] on SQLite, and on PostgreSQL when a URL is given.
fn apply_loops(n: usize, rounds: usize) {
    let sqlite = SqliteDir(tempfile::tempdir().unwrap());
    apply_loop::<SqliteConnection>(&sqlite, n, rounds);
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("MIGRATE_BENCH_POSTGRES_URL") {
        apply_loop::<diesel::PgConnection>(&PgServer(url), n, rounds);
    }
}

fn main() {
    #[cfg(not(feature = "postgres"))]
    if let Ok(url) = std::env::var("MIGRATE_BENCH_POSTGRES_URL") {
        panic!(
            "MIGRATE_BENCH_POSTGRES_URL is set ({url}) but this build has no PostgreSQL: add `--features postgres`"
        );
    }
    if let Ok(spec) = std::env::var(MEMORY_CHILD) {
        return memory_child(&spec);
    }
    if let Ok(rounds) = std::env::var("MIGRATE_BENCH_BOOT_LOOP") {
        return boot_loop(1000, rounds.parse().unwrap());
    }
    if let Ok(rounds) = std::env::var("MIGRATE_BENCH_APPLY_LOOP") {
        return apply_loops(1000, rounds.parse().unwrap());
    }
    if let Ok(rounds) = std::env::var("MIGRATE_BENCH_STARTUP") {
        return startup_table(rounds.parse().unwrap());
    }
    if let Ok(spec) = std::env::var("MIGRATE_BENCH_PROFILE") {
        return profile(&spec);
    }
    if let Ok(n) = std::env::var("MIGRATE_BENCH_MEMORY") {
        return memory(n.parse().unwrap());
    }
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, rounds): (&[usize], usize) = if full {
        let rounds = std::env::var("MIGRATE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(7);
        (&[100, 1000], rounds)
    } else {
        // The smoke test: every contender works; no time is asserted.
        apply_loops(20, 6);
        (&[20], 1)
    };
    let sqlite = SqliteDir(tempfile::tempdir().unwrap());
    for &n in sizes {
        bench::<SqliteConnection>(&sqlite, n, rounds);
    }
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("MIGRATE_BENCH_POSTGRES_URL") {
        for &n in sizes {
            bench::<diesel::PgConnection>(&PgServer(url.clone()), n, rounds);
        }
    }
    if full {
        startup_table(100);
        memory(10_000);
    } else {
        memory(*sizes.last().unwrap());
    }
}
