//! The reliability and security suite: concurrent deploys, failures at every
//! position of a plan, SIGKILL crashes, a catalogue of bad inputs, and a grep
//! of every output for the database password. On SQLite, and on the real
//! PostgreSQL (and MariaDB) servers that `scripts/test` starts.
//!
//! This binary is also the application under test: with `REL_CHILD` set,
//! `main` runs a migrating application instead (see [`child`]), and the
//! suite drives it as separate processes.
//!
//! Size: `MIGRATE_RELIABILITY=full` runs the full size (16 processes × 20
//! rounds, 50 kills per backend), which `scripts/test` (and so CI) sets: it
//! takes about two minutes. Without it, a bounded size (16 × 4, 12 kills).
//! `MIGRATE_RELIABILITY_SEED=<n>` replays a run's kill schedule: the kill
//! moments as fractions of the plan's measured duration (the timing itself
//! varies from machine to machine).
//! `MIGRATE_WRITE_CATALOGUE=1` rewrites the bad-input table in
//! `docs/reliability.md` from the cases below; otherwise the suite checks
//! that the table and the cases agree.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use migrate::backend::Backend;
use migrate::backend::TableName;
use migrate::{Migrator, Script};
use support::{Proc, Run, TestDb, code, failing, history, panicking, slow};

const TABLE: &str = "migrate_history";
/// The password every server URL of the suite carries (the test servers
/// trust local connections, so it is accepted and ignored). No output may
/// contain it, raw or percent-encoded.
const SECRET: &str = "Rel5-#pw/x";
const SECRET_ENCODED: &str = "Rel5-%23pw%2Fx";
/// What any piece of the password would start with (a URL cut at `#`).
const SECRET_STEM: &str = "Rel5-";

// ---------------------------------------------------------------------------
// The application under test.

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The child: `REL_CHILD` is `deploy`, `crash` or `app`, `REL_BACKEND` the
/// backend.
fn child() -> ExitCode {
    let mode = var("REL_CHILD").unwrap();
    match var("REL_BACKEND").as_deref() {
        Some("sqlite") => run_child::<diesel::SqliteConnection>(&mode),
        #[cfg(feature = "postgres")]
        Some("postgres") => run_child::<diesel::PgConnection>(&mode),
        #[cfg(feature = "mysql")]
        Some("mysql") => run_child::<diesel::MysqlConnection>(&mode),
        other => panic!("unknown backend {other:?}"),
    }
}

fn run_child<C: Backend + SimpleConnection>(mode: &str) -> ExitCode {
    match mode {
        "deploy" => deploy::<C>(),
        "crash" => crash::<C>(),
        "app" if var("REL_STARTUP").is_some() => startup::<C>(),
        "app" => migrate::cli::Cli::new(app::<C>()).run(),
        other => panic!("unknown child mode {other}"),
    }
}

/// Runs `migrator` with the API on `REL_URL`, printing what it did.
fn run_api<C: Backend>(migrator: Migrator) -> ExitCode {
    // The library's own logs, as an application would collect them.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let url = var("REL_URL").unwrap();
    let mut conn = match C::establish(&url) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let lock_timeout = var("REL_LOCK_TIMEOUT").map_or(120, |s| s.parse().unwrap());
    match migrator
        .lock_timeout(Duration::from_secs(lock_timeout))
        .run(&mut conn)
    {
        Ok(report) => {
            println!("steps={} locked={}", report.steps.len(), report.locked);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Round `REL_ROUND` of a deploy: two scripts per round (a slow one that
/// sleeps inside its transaction, and a quick one), each logging its version
/// and incrementing a counter. `REL_FAULT=error|panic` adds a next-round
/// script that fails or panics.
fn deploy<C: Backend + SimpleConnection>() -> ExitCode {
    let round: u32 = var("REL_ROUND").unwrap().parse().unwrap();
    // A wave starts together: each replica waits for the parent's signal,
    // so that a slow spawn cannot let one finish before the next starts.
    if let Some(go) = var("REL_GO") {
        let waited = Instant::now();
        while !Path::new(&go).exists() {
            assert!(
                waited.elapsed() < Duration::from_secs(120),
                "no start signal at {go}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut scripts = vec![Script::sql(
        "1.0.0",
        "create_log",
        "CREATE TABLE log (v VARCHAR(40) NOT NULL);\nCREATE TABLE counter (n INTEGER NOT NULL);\nINSERT INTO counter VALUES (0);",
        None,
    )];
    let effect = |v: &str| {
        leak(format!(
            "INSERT INTO log VALUES ('{v}'); UPDATE counter SET n = n + 1"
        ))
    };
    for r in 1..=round {
        let slow_v = leak(format!("1.{r}.0"));
        let quick_v = leak(format!("1.{r}.1"));
        scripts
            .push(slow::<C>(slow_v, effect(slow_v), Duration::from_millis(100)).with_name("slow"));
        scripts.push(code::<C>(quick_v, effect(quick_v), "").with_name("quick"));
    }
    let mut app = format!("1.{round}.1");
    if let Some(fault) = var("REL_FAULT") {
        let v = leak(format!("1.{}.0", round + 1));
        scripts.push(match fault.as_str() {
            "error" => failing::<C>(v, effect(v)),
            _ => panicking::<C>(v, effect(v)),
        });
        app = v.to_owned();
    }
    run_api::<C>(
        Migrator::new("0.0.0")
            .only_listed_scripts()
            .app_version(app)
            .scripts(scripts),
    )
}

/// A long plan of `REL_STEPS` quick transactional steps, each logging its
/// version: the crash target.
/// A crash-plan step: logs its version, leaves a marker file in
/// `REL_MARKERS` (so that the suite knows the kill landed inside this
/// step's transaction when the marker exists without the row), and sleeps.
struct Marked<C> {
    version: &'static str,
    _conn: std::marker::PhantomData<fn() -> C>,
}

impl<C: Backend + SimpleConnection> migrate::MigrationScript for Marked<C> {
    type Connection = C;

    fn up(&self, conn: &mut C) -> Result<(), migrate::BoxError> {
        conn.batch_execute(&format!("INSERT INTO log VALUES ('{}')", self.version))?;
        std::fs::write(
            Path::new(&var("REL_MARKERS").unwrap()).join(self.version),
            "",
        )?;
        std::thread::sleep(Duration::from_millis(3));
        Ok(())
    }
}

fn crash<C: Backend + SimpleConnection>() -> ExitCode {
    let steps: u32 = var("REL_STEPS").unwrap().parse().unwrap();
    let scripts: Vec<Script> = (1..=steps)
        .map(|k| {
            let version = leak(format!("1.0.{k}"));
            let step: &'static Marked<C> = Box::leak(Box::new(Marked {
                version,
                _conn: std::marker::PhantomData,
            }));
            Script::new(version, step)
        })
        .collect();
    run_api::<C>(
        Migrator::new("0.0.0")
            .only_listed_scripts()
            .app_version(format!("1.0.{steps}"))
            .scripts(scripts),
    )
}

/// The application's own start-up: `Migrator::run` on the URL given as
/// `--database-url`, which goes down as well as up (the command line's
/// `up` only goes up).
fn startup<C: Backend + SimpleConnection>() -> ExitCode {
    // The library's own logs, as an application would collect them.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .iter()
        .position(|a| a == "--database-url")
        .and_then(|i| args.get(i + 1))
        .expect("--database-url");
    let mut conn = match C::establish(url) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("error: cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app::<C>().run(&mut conn) {
        Ok(report) => {
            println!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The application behind the command line (`migrate::cli`), version
/// 1.0.2, in two shapes:
/// - `REL_APP=steps`: six code scripts `1.0.1`..`1.0.6` logging their
///   version; `REL_FAIL_AT=k` makes the k-th fail (`REL_FAIL_KIND=error`) or
///   panic (`panic`) after logging;
/// - otherwise the catalogue's application: SQL `1.0.0` (items), code
///   `1.0.1` (a row), SQL `1.0.2` (tags, no down), with variants switched
///   on by `REL_EDITED`, `REL_BUILD_META`, `REL_HALFWAY`, `REL_COMMITS`, `REL_EMPTY_SQL`,
///   `REL_OUT_OF_ORDER` and `REL_NON_TX` (a slow step outside a
///   transaction, `REL_SLEEP_MS` long).
fn app<C: Backend + SimpleConnection>() -> Migrator {
    let base = Migrator::new("1.0.2").only_listed_scripts();
    if var("REL_APP").as_deref() == Some("steps") {
        let fail_at: u32 = var("REL_FAIL_AT").map_or(0, |k| k.parse().unwrap());
        let kind = var("REL_FAIL_KIND").unwrap_or_default();
        let scripts = (1..=6).map(|k| {
            let v = leak(format!("1.0.{k}"));
            let up = leak(format!("INSERT INTO log VALUES ('{v}')"));
            let name = leak(format!("step_{k}"));
            match (k == fail_at, kind.as_str()) {
                (true, "error") => failing::<C>(v, up),
                (true, _) => panicking::<C>(v, up),
                (false, _) => code::<C>(v, up, leak(format!("DELETE FROM log WHERE v = '{v}'"))),
            }
            .with_name(name)
        });
        return base.app_version("1.0.6").scripts(scripts);
    }
    let items = if var("REL_EDITED").is_some() {
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL);"
    } else {
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);"
    };
    let seed_version = if var("REL_BUILD_META").is_some() {
        "1.0.1+build.2"
    } else {
        "1.0.1"
    };
    let mut scripts = vec![
        Script::sql("1.0.0", "create_items", items, Some("DROP TABLE items;")),
        code::<C>(
            seed_version,
            "INSERT INTO items (id, name) VALUES (1, 'first')",
            "DELETE FROM items WHERE id = 1",
        )
        .with_name("seed_items"),
        Script::sql(
            "1.0.2",
            "create_tags",
            "CREATE TABLE tags (id INTEGER PRIMARY KEY);",
            None,
        ),
    ];
    if var("REL_HALFWAY").is_some() {
        scripts.push(Script::sql(
            "1.1.0",
            "halfway",
            "INSERT INTO items (id, name) VALUES (2, 'second');\nINSERT INTO no_such_table VALUES (1);\nINSERT INTO items (id, name) VALUES (3, 'third');",
            None,
        ));
    }
    if var("REL_COMMITS").is_some() {
        scripts.push(Script::sql(
            "1.1.0",
            "commits",
            "INSERT INTO items (id, name) VALUES (2, 'second');\nCOMMIT;\nINSERT INTO no_such_table VALUES (1);",
            None,
        ));
    }
    if var("REL_EMPTY_SQL").is_some() {
        scripts.push(Script::sql("1.1.0", "blank", "-- TODO\n", None));
    }
    if var("REL_OUT_OF_ORDER").is_some() {
        scripts.push(Script::sql("0.9.0", "early", "SELECT 1;", None));
    }
    if var("REL_NON_TX").is_some() {
        let sleep = Duration::from_millis(var("REL_SLEEP_MS").map_or(0, |ms| ms.parse().unwrap()));
        scripts.push(
            slow::<C>(
                "1.1.0",
                "INSERT INTO items (id, name) VALUES (2, 'outside')",
                sleep,
            )
            .with_name("outside")
            .with_transaction(false),
        );
    }
    base.scripts(scripts)
}

// ---------------------------------------------------------------------------
// Driving children, and every output they produce.

/// Every output of every child, for the password grep.
static OUTPUTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether the command line ran against PostgreSQL, with the password in
/// its URL (then the masked URL must show up in some output).
static POSTGRES_CLI_RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn record_output(text: String) {
    OUTPUTS.lock().unwrap().push(text);
}

fn command(backend: &str, mode: &str, envs: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("REL_CHILD", mode)
        .env("REL_BACKEND", backend)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in [
        "DATABASE_URL",
        "MIGRATE_ENV",
        "APPLICATION_VERSION",
        "MIGRATE_AUTHORIZE_DOWNGRADE_TO",
        "MIGRATE_WHEN_AHEAD",
        "RUST_LOG",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(v);
    }
    // Every log line too goes through the password grep.
    cmd.env("RUST_LOG", "trace");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// `Command::spawn` into a [`Proc`].
trait SpawnProc {
    fn proc(&mut self) -> Result<Proc, String>;
}

impl SpawnProc for Command {
    fn proc(&mut self) -> Result<Proc, String> {
        Proc::spawn(self)
    }
}

/// Waits for `proc`, at most `limit` (a safety net against a hang, which
/// is then the failure), and records its output.
fn finish(proc: Proc, limit: Duration) -> Result<Run, String> {
    let run = proc.finish(limit)?;
    record_output(run.all());
    Ok(run)
}

/// Runs the command-line application with `args` in `dir`.
fn app_run(
    backend: &str,
    dir: &Path,
    args: &[&str],
    envs: &[(&str, String)],
) -> Result<Run, String> {
    if backend == "postgres" {
        POSTGRES_CLI_RAN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let child = Proc::spawn(command(backend, "app", envs).args(args).current_dir(dir))?;
    finish(child, Duration::from_secs(120))
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

// ---------------------------------------------------------------------------
// The backends.

/// A backend of the suite: its test database and how a child reaches it.
trait Db: TestDb + Sync {
    /// The URL children are given: with the suite's password on servers.
    fn child_url(&self) -> String {
        self.url()
    }
}

impl Db for support::Sqlite {}

/// `scheme://user@host` → `scheme://user:<encoded secret>@host`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn with_secret(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    format!("{scheme}://{user}:{SECRET_ENCODED}@{host}")
}

#[cfg(feature = "postgres")]
impl Db for support::Postgres {
    fn child_url(&self) -> String {
        with_secret(&self.url)
    }
}

#[cfg(feature = "mysql")]
impl Db for support::Mysql {}

/// Takes and releases the migration lock from the suite's own connection:
/// proof that no process left it held.
fn lock_is_free<D: Db>(db: &D) -> Result<(), String> {
    let mut conn = db.connect();
    if D::NAME == "postgres" {
        // The advisory lock belongs to the session: once the server has
        // seen the connection go, no advisory lock is left at all.
        let started = Instant::now();
        loop {
            let held = D::strings(
                &mut conn,
                "SELECT CONCAT(count(*), '') AS s FROM pg_locks WHERE locktype = 'advisory'
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            );
            if held == ["0"] {
                break;
            }
            ensure!(
                started.elapsed() < Duration::from_secs(10),
                "an advisory lock outlived its connection by 10 s: {held:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let table = TableName::new(TABLE).unwrap();
    let lock = conn
        .lock(&table, Duration::from_secs(10))
        .map_err(|e| format!("the lock stayed held: {e}"))?;
    conn.unlock(&table, lock).map_err(|e| e.to_string())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// 1. Concurrent deploys.

fn spawn_wave(backend: &str, url: &str, round: u32, processes: usize) -> Result<Vec<Run>, String> {
    // Every replica waits for this file, written once all are spawned.
    let gate = tempfile::tempdir().map_err(|e| e.to_string())?;
    let go = gate.path().join("go");
    let children: Vec<Proc> = (0..processes)
        .map(|_| {
            command(
                backend,
                "deploy",
                &[
                    ("REL_URL", url.to_owned()),
                    ("REL_ROUND", round.to_string()),
                    ("REL_GO", go.display().to_string()),
                ],
            )
            .proc()
        })
        .collect::<Result<_, _>>()?;
    std::fs::write(&go, "").map_err(|e| e.to_string())?;
    children
        .into_iter()
        .map(|c| finish(c, Duration::from_secs(300)))
        .collect()
}

fn steps_and_locked(out: &Run) -> Result<(usize, bool), String> {
    let line = out.stdout.trim();
    let (steps, locked) = line
        .strip_prefix("steps=")
        .and_then(|r| r.split_once(" locked="))
        .ok_or_else(|| format!("unexpected child output {out:?}"))?;
    Ok((steps.parse().unwrap(), locked == "true"))
}

/// `processes` start at once, `rounds` times, each round adding two
/// scripts; then all restart with nothing to do; then a faulty process
/// fails (an error or a panic) inside a step. Every script runs once,
/// every good process exits 0, no restart takes the lock, and the lock is
/// free after every wave.
fn concurrent_deploys<D: Db>(processes: usize, rounds: u32) -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let url = db.child_url();
    let mut conn = db.connect();
    for round in 1..=rounds {
        let outs = spawn_wave(D::NAME, &url, round, processes)?;
        let (mut steps, mut lockers) = (0, 0);
        for out in &outs {
            ensure!(out.code == 0, "round {round}: a process failed: {out:?}");
            let (n, locked) = steps_and_locked(out)?;
            steps += n;
            lockers += usize::from(locked);
        }
        // They did contend: more than one saw work pending and queued for
        // the lock (all but one then found it done).
        ensure!(
            lockers >= 2,
            "round {round}: only {lockers} process took the lock; the wave was not concurrent"
        );
        let expected_steps = if round == 1 { 3 } else { 2 };
        ensure!(
            steps == expected_steps,
            "round {round}: {processes} processes ran {steps} steps in all, expected {expected_steps}"
        );
        let versions: Vec<String> = std::iter::once("1.0.0".to_owned())
            .chain((1..=round).flat_map(|r| [format!("1.{r}.0"), format!("1.{r}.1")]))
            .collect();
        let expected_history: Vec<String> = versions.iter().map(|v| format!("{v}:up")).collect();
        let rows = history::<D>(&mut conn, TABLE);
        ensure!(rows == expected_history, "round {round}: history {rows:?}");
        let log = D::strings(&mut conn, "SELECT v AS s FROM log ORDER BY v");
        ensure!(
            log == sorted(versions[1..].to_vec()),
            "round {round}: each script's effect once, got {log:?}"
        );
        let counter = D::strings(&mut conn, "SELECT CONCAT(n, '') AS s FROM counter");
        ensure!(
            counter == [(2 * round).to_string()],
            "round {round}: counter {counter:?}"
        );
        lock_is_free(&db)?;
        // Every replica restarts: nothing pending, so nobody takes the lock.
        for out in spawn_wave(D::NAME, &url, round, processes)? {
            ensure!(out.code == 0, "round {round} restart: {out:?}");
            let (steps, locked) = steps_and_locked(&out)?;
            ensure!(
                steps == 0 && !locked,
                "round {round} restart: a process took the lock with nothing pending: {out:?}"
            );
        }
        // A faulty build fails inside its step; the lock is free after.
        let fault = if round % 2 == 0 { "error" } else { "panic" };
        let out = finish(
            command(
                D::NAME,
                "deploy",
                &[
                    ("REL_URL", url.clone()),
                    ("REL_ROUND", round.to_string()),
                    ("REL_FAULT", fault.to_owned()),
                ],
            )
            .proc()?,
            Duration::from_secs(120),
        )?;
        let next = format!("1.{}.0", round + 1);
        ensure!(
            out.code == 1
                && out
                    .stderr
                    .contains(&format!("migration {next} `Exec` (up) failed")),
            "round {round}: the faulty process ({fault}) should fail naming {next}: {out:?}"
        );
        ensure!(
            history::<D>(&mut conn, TABLE) == expected_history,
            "round {round}: the faulty step left a row"
        );
        ensure!(
            D::strings(&mut conn, "SELECT v AS s FROM log ORDER BY v")
                == sorted(versions[1..].to_vec())
                && D::strings(&mut conn, "SELECT CONCAT(n, '') AS s FROM counter")
                    == [(2 * round).to_string()],
            "round {round}: the faulty step left effects"
        );
        lock_is_free(&db)?;
    }
    // History rows hold no secrets.
    let rows = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, name, description, kind, direction, applied_at, COALESCE(checksum, '')) AS s FROM {TABLE}"
        ),
    );
    ensure!(
        rows.iter()
            .all(|r| !r.contains(SECRET) && !r.contains(SECRET_ENCODED)),
        "a history row holds the password: {rows:?}"
    );
    Ok(format!(
        "{processes} processes x {rounds} rounds: {} scripts applied once each, {} restarts without the lock, {rounds} faulty processes (error and panic) left the lock free",
        2 * rounds + 1,
        processes * rounds as usize
    ))
}

/// The URL of the PgBouncer that `scripts/test` starts in front of the test
/// server, with `pool_mode = transaction`. Under CI its absence is a
/// failure.
#[cfg(feature = "postgres")]
fn pgbouncer_url() -> Option<String> {
    match var("MIGRATE_TEST_PGBOUNCER_URL") {
        Some(url) => Some(url),
        None if var("CI").is_some() => {
            panic!(
                "MIGRATE_TEST_PGBOUNCER_URL is not set: CI must run the PgBouncer test (use scripts/test)"
            )
        }
        None => {
            eprintln!(
                "\n*** SKIPPED: PgBouncer test — MIGRATE_TEST_PGBOUNCER_URL is not set. Run scripts/test. ***\n"
            );
            None
        }
    }
}

/// Through PgBouncer in transaction pooling mode a session's advisory lock
/// holds nothing. `processes` deploy together through it, three waves:
/// each either migrates (its statements happened to keep to one server
/// session) or refuses, naming the pooler and what to do; no script runs
/// twice, and no process fails otherwise. A direct connection then
/// finishes the work: every script exactly once.
#[cfg(feature = "postgres")]
fn deploys_through_pgbouncer(processes: usize) -> Result<String, String> {
    let Some(db) = support::Postgres::create() else {
        return Ok("skipped".into());
    };
    let Some(bouncer) = pgbouncer_url() else {
        return Ok("skipped".into());
    };
    let name = db.url.rsplit_once('/').unwrap().1;
    let through = format!("{}/{name}", bouncer.rsplit_once('/').unwrap().0);
    let mut conn = db.connect();
    let (mut migrated, mut refused) = (0, 0);
    for round in 1..=3 {
        let gate = tempfile::tempdir().map_err(|e| e.to_string())?;
        let go = gate.path().join("go");
        let children: Vec<Proc> = (0..processes)
            .map(|_| {
                command(
                    "postgres",
                    "deploy",
                    &[
                        ("REL_URL", through.clone()),
                        ("REL_ROUND", round.to_string()),
                        ("REL_GO", go.display().to_string()),
                        // A session a pooler left holding the lock is
                        // waited for this long.
                        ("REL_LOCK_TIMEOUT", "5".to_owned()),
                    ],
                )
                .proc()
            })
            .collect::<Result<_, _>>()?;
        std::fs::write(&go, "").map_err(|e| e.to_string())?;
        for child in children {
            let out = finish(child, Duration::from_secs(300))?;
            match out.code {
                0 => migrated += 1,
                1 if out.stderr.contains(
                    "transaction pooler, such as PgBouncer with pool_mode = transaction",
                ) || out
                    .stderr
                    .contains("transaction pooler (PgBouncer with pool_mode = transaction)") =>
                {
                    refused += 1
                }
                _ => {
                    return Err(format!(
                        "round {round}: a process failed otherwise: {out:?}"
                    ));
                }
            }
        }
        // Whatever ran, ran once: a version is never recorded applied
        // twice, and its effect is there once at most.
        let tables = support::Postgres::tables(&mut conn);
        if !tables.contains(&"log".to_owned()) || !tables.contains(&TABLE.to_owned()) {
            continue; // nothing migrated yet
        }
        let twice = support::Postgres::strings(
            &mut conn,
            &format!("SELECT version AS s FROM {TABLE} GROUP BY version HAVING count(*) > 1"),
        );
        ensure!(twice.is_empty(), "round {round}: recorded twice: {twice:?}");
        let doubled = support::Postgres::strings(
            &mut conn,
            "SELECT v AS s FROM log GROUP BY v HAVING count(*) > 1",
        );
        ensure!(doubled.is_empty(), "round {round}: run twice: {doubled:?}");
    }
    // The pooler's server sessions may keep the lock a client took and
    // released on another session: a direct run would wait for it, and
    // says so (see `Error::LockTimeout`'s hint). End them, as the message
    // tells the user to.
    support::Postgres::strings(
        &mut conn,
        "SELECT CONCAT(pg_terminate_backend(a.pid), '') AS s FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND a.state = 'idle' AND a.datname = current_database()",
    );
    // A direct connection finishes the last round's work.
    let direct = finish(
        command(
            "postgres",
            "deploy",
            &[("REL_URL", db.url.clone()), ("REL_ROUND", "3".to_owned())],
        )
        .proc()?,
        Duration::from_secs(120),
    )?;
    ensure!(direct.code == 0, "the direct run failed: {direct:?}");
    let versions: Vec<String> = std::iter::once("1.0.0".to_owned())
        .chain((1..=3).flat_map(|r| [format!("1.{r}.0"), format!("1.{r}.1")]))
        .collect();
    let expected: Vec<String> = versions.iter().map(|v| format!("{v}:up")).collect();
    let rows = history::<support::Postgres>(&mut conn, TABLE);
    ensure!(rows == expected, "history {rows:?}");
    let log = support::Postgres::strings(&mut conn, "SELECT v AS s FROM log ORDER BY v");
    ensure!(log == sorted(versions[1..].to_vec()), "effects {log:?}");
    Ok(format!(
        "{processes} processes x 3 waves through PgBouncer (pool_mode = transaction): {migrated} migrated, {refused} refused naming the pooler, none failed otherwise, nothing ran twice; a direct run then applied every script exactly once"
    ))
}

// ---------------------------------------------------------------------------
// 2. Failures inside a plan.

/// For every position k of a 6-step plan, an error and then a panic at k:
/// exit 1 naming the script and version, exactly steps 1..k-1 kept, and a
/// fixed rerun converges. In atomic mode (where the backend has it),
/// nothing at all changes.
fn failures<D: Db>() -> Result<String, String> {
    let mut runs = 0;
    let atomic_modes: &[bool] = if D::Conn::TRANSACTIONAL_DDL {
        &[false, true]
    } else {
        &[false]
    };
    for &atomic in atomic_modes {
        for kind in ["error", "panic"] {
            for k in 1..=6u32 {
                let Some(db) = D::create() else {
                    return Ok("skipped".into());
                };
                let dir = tempfile::tempdir().unwrap();
                let mut conn = db.connect();
                conn.batch_execute("CREATE TABLE log (v VARCHAR(40) NOT NULL)")
                    .unwrap();
                let before = D::schema(&mut conn);
                let url = db.child_url();
                let mut args = vec!["--database-url", url.as_str(), "up"];
                if atomic {
                    args.insert(2, "--atomic");
                }
                let envs = [
                    ("REL_APP", "steps".to_owned()),
                    ("REL_FAIL_AT", k.to_string()),
                    ("REL_FAIL_KIND", kind.to_owned()),
                ];
                let out = app_run(D::NAME, dir.path(), &args, &envs)?;
                runs += 1;
                let what = format!("{kind} at {k} of 6{}", if atomic { ", atomic" } else { "" });
                ensure!(
                    out.code == 1
                        && out
                            .stderr
                            .contains(&format!("error: migration 1.0.{k} `step_{k}` (up) failed")),
                    "{what}: {out:?}"
                );
                let kept: Vec<String> = (1..k).map(|i| format!("1.0.{i}")).collect();
                let log = D::strings(&mut conn, "SELECT v AS s FROM log ORDER BY v");
                if atomic {
                    ensure!(
                        log.is_empty() && D::schema(&mut conn) == before,
                        "{what}: something changed: {log:?}"
                    );
                } else {
                    let rows: Vec<String> = kept.iter().map(|v| format!("{v}:up")).collect();
                    ensure!(log == kept, "{what}: effects {log:?}");
                    ensure!(
                        history::<D>(&mut conn, TABLE) == rows,
                        "{what}: history {:?}",
                        history::<D>(&mut conn, TABLE)
                    );
                }
                // Fixed, a rerun converges.
                let out = app_run(
                    D::NAME,
                    dir.path(),
                    &args,
                    &[("REL_APP", "steps".to_owned())],
                )?;
                ensure!(out.code == 0, "{what}: the fixed rerun failed: {out:?}");
                let all: Vec<String> = (1..=6).map(|i| format!("1.0.{i}")).collect();
                ensure!(
                    D::strings(&mut conn, "SELECT v AS s FROM log ORDER BY v") == all,
                    "{what}: the rerun did not converge"
                );
            }
        }
    }
    Ok(format!(
        "positions 1..6 of 6 x {{error, panic}} x {{{}}}: {runs} failing runs, each then fixed and converged",
        if atomic_modes.len() == 2 {
            "per step, atomic"
        } else {
            "per step; atomic mode is refused here"
        }
    ))
}

// ---------------------------------------------------------------------------
// 3. Crashes.

/// A `REL_STEPS`-step plan, killed with SIGKILL at random moments `kills`
/// times (the schedule comes from `seed`). After every kill, every step's
/// row and effect are both there or both absent; the next run converges,
/// and the lock is free once the killed process is gone.
fn crashes<D: Db>(kills: u32, seed: u64) -> Result<String, String> {
    const STEPS: u32 = 40;
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let url = db.child_url();
    let mut conn = db.connect();
    let markers = tempfile::tempdir().unwrap();
    let reset = |conn: &mut D::Conn| {
        conn.batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}"))
            .unwrap();
        conn.batch_execute("DROP TABLE IF EXISTS log").unwrap();
        conn.batch_execute("CREATE TABLE log (v VARCHAR(40) NOT NULL)")
            .unwrap();
        for entry in std::fs::read_dir(markers.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
    };
    let spawn = || {
        command(
            D::NAME,
            "crash",
            &[
                ("REL_URL", url.clone()),
                ("REL_STEPS", STEPS.to_string()),
                ("REL_MARKERS", markers.path().display().to_string()),
            ],
        )
        .proc()
    };
    // Calibrate: how long one whole plan takes here.
    reset(&mut conn);
    let started = Instant::now();
    let out = finish(spawn()?, Duration::from_secs(120))?;
    ensure!(out.code == 0, "calibration run: {out:?}");
    let mut whole = started.elapsed();
    reset(&mut conn);

    let mut rng = fastrand::Rng::with_seed(seed);
    let both_or_neither = |conn: &mut D::Conn, what: &str| -> Result<usize, String> {
        let applied = if D::tables(conn).contains(&TABLE.to_owned()) {
            D::strings(
                conn,
                &format!(
                    "SELECT version AS s FROM {TABLE} WHERE direction = 'up' ORDER BY version"
                ),
            )
        } else {
            Vec::new()
        };
        let log = D::strings(conn, "SELECT v AS s FROM log ORDER BY v");
        ensure!(
            applied == log,
            "seed {seed}, {what}: rows {applied:?} but effects {log:?}"
        );
        Ok(applied.len())
    };
    let (mut killed, mut mid_plan, mut recoveries_killed, mut converged) = (0, 0, 0, 0);
    let mut inside = 0;
    while killed < kills {
        // A run killed at a random moment; sometimes its recovery run too.
        let runs = if rng.u8(..3) == 0 { 2 } else { 1 };
        let killed_before = killed;
        for run in 0..runs {
            let delay = whole.mul_f64(rng.f64());
            let mut child = spawn()?;
            std::thread::sleep(delay);
            let was_running = child.running()?;
            if was_running {
                child.kill()?;
                killed += 1;
                recoveries_killed += run;
            }
            let out = finish(child, Duration::from_secs(30))?;
            ensure!(
                was_running || out.code == 0,
                "seed {seed}: a run that was not killed failed: {out:?}"
            );
            if !was_running {
                // The plan took less than `delay`. A calibration slowed by
                // the machine (a stalled VM) would otherwise keep the
                // kills after the runs, and the loop would hardly ever
                // kill: schedule within what a run has taken since.
                whole = whole.min(delay);
            }
            let what = format!("kill {killed} after {delay:?}");
            let applied = both_or_neither(&mut conn, &what)?;
            if applied > 0 && applied < STEPS as usize {
                mid_plan += 1;
            }
            // A marker without its row: the kill landed inside that step's
            // transaction, after its effect ran, and the effect is gone.
            let marked = std::fs::read_dir(markers.path()).unwrap().count();
            if was_running && marked > applied {
                inside += 1;
            }
            // The killed process is gone, and so is its lock.
            lock_is_free(&db).map_err(|e| format!("seed {seed}, {what}: {e}"))?;
        }
        if killed == killed_before {
            // Every run finished before its kill: nothing to recover from.
            reset(&mut conn);
            continue;
        }
        // The next run converges.
        let out = finish(spawn()?, Duration::from_secs(120))?;
        ensure!(
            out.code == 0,
            "seed {seed}, after kill {killed}: the next run failed: {out:?}"
        );
        let applied = both_or_neither(&mut conn, &format!("the run after kill {killed}"))?;
        ensure!(
            applied == STEPS as usize,
            "seed {seed}, after kill {killed}: the next run did not converge ({applied} of {STEPS})"
        );
        converged += 1;
        reset(&mut conn);
    }
    ensure!(
        inside * 5 >= killed,
        "seed {seed}: only {inside} of {killed} kills landed inside a step's transaction: the schedule does not test what it claims"
    );
    Ok(format!(
        "{killed} SIGKILLs (seed {seed}) at random moments of a {STEPS}-step plan, {inside} of them inside a step's transaction after its effect ran, {recoveries_killed} of the recovery run, {mid_plan} leaving the plan part-applied: rows and effects always matched, no lock outlived its process, and all {converged} next runs converged"
    ))
}

/// A process killed during a step that runs outside a transaction leaves
/// the step marked in progress: `status` says so and how to resolve it,
/// `up` refuses, and after `resolve` the next run converges.
fn crash_outside_a_transaction<D: Db>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.child_url();
    let run = |args: &[&str], envs: &[(&str, String)]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        app_run(D::NAME, dir.path(), &all, envs)
    };
    let out = run(&["up"], &[])?;
    ensure!(out.code == 0, "{out:?}");
    let envs = [
        ("REL_NON_TX", "1".to_owned()),
        ("REL_SLEEP_MS", "60000".to_owned()),
    ];
    let mut child = command(D::NAME, "app", &envs)
        .args([
            "--database-url",
            url.as_str(),
            "--app-version",
            "1.1.0",
            "up",
        ])
        .current_dir(dir.path())
        .proc()?;
    let mut conn = db.connect();
    let started = Instant::now();
    while D::strings(
        &mut conn,
        &format!("SELECT version AS s FROM {TABLE} WHERE dirty"),
    )
    .is_empty()
    {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its insert ran; it is sleeping before it finishes.
    while D::strings(&mut conn, "SELECT name AS s FROM items WHERE id = 2").is_empty() {
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the step never wrote"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill()?;
    let _ = finish(child, Duration::from_secs(30));
    let envs = [("REL_NON_TX", "1".to_owned())];
    let out = run(&["--app-version", "1.1.0", "status"], &envs)?;
    ensure!(
        out.code == 0
            && out.stdout.contains("IN PROGRESS (dirty)")
            && out.all().contains("resolve --version 1.1.0 --completed"),
        "status: {out:?}"
    );
    let out = run(&["--app-version", "1.1.0", "up"], &envs)?;
    ensure!(
        out.code == 1
            && out
                .stderr
                .contains("migration 1.1.0 `outside` (up) started in change"),
        "up: {out:?}"
    );
    // The user looks: the row is there, so the step completed.
    let out = run(
        &[
            "--app-version",
            "1.1.0",
            "resolve",
            "--version",
            "1.1.0",
            "--completed",
        ],
        &envs,
    )?;
    ensure!(out.code == 0, "resolve: {out:?}");
    let out = run(&["--app-version", "1.1.0", "status", "--check"], &envs)?;
    ensure!(out.code == 0, "status --check after resolve: {out:?}");
    let out = run(&["--app-version", "1.1.0", "up"], &envs)?;
    ensure!(out.code == 0, "up after resolve: {out:?}");
    let rows = D::strings(&mut conn, "SELECT name AS s FROM items WHERE id = 2");
    ensure!(rows == ["outside"], "the step's row, once: {rows:?}");
    let rows = history::<D>(&mut conn, TABLE);
    ensure!(
        rows.last().map(String::as_str) == Some("1.1.0:up")
            && D::strings(
                &mut conn,
                &format!("SELECT version AS s FROM {TABLE} WHERE dirty")
            )
            .is_empty(),
        "history after resolve: {rows:?}"
    );
    lock_is_free(&db)?;
    Ok("a kill during a non-transactional step: marked in progress, reported, refused, resolved, converged".into())
}

// ---------------------------------------------------------------------------
// 4. Bad input: the catalogue.

/// Where a case runs.
#[derive(Clone, Copy, PartialEq)]
enum On {
    Every,
    Sqlite,
    Servers,
    /// Refused by `embed_sql!` when the application is built: checked by
    /// `tests/embed_sql_build.rs`, which builds such a crate.
    Build,
}

/// One bad input: what the user did, what they are told, what is promised.
struct Case {
    /// The input, for the docs.
    input: &'static str,
    /// Arguments after the program name; `{URL}` is the database's URL.
    args: &'static [&'static str],
    /// Variables set for the process (the application's variant switches,
    /// and the user's environment).
    envs: &'static [(&'static str, &'static str)],
    /// A configuration file written first: name and text (`{URL}` as above).
    file: Option<(&'static str, &'static str)>,
    /// SQL run on the migrated database first (`{CHANGE}` is the quoted
    /// `change` column).
    setup: &'static str,
    /// The exit code.
    code: i32,
    /// The error, as printed (a part of it, exactly).
    error: &'static str,
    /// The guarantee, for the docs.
    guarantee: &'static str,
    on: On,
}

const UNCHANGED: &str = "nothing runs; schema and history unchanged";
const TOLERATED: &str =
    "tolerated: exit 0 with a warning, nothing runs; schema and history unchanged";
/// A code script 9.0.0 applied by a newer build (its row, written by hand).
const FUTURE_CODE_SCRIPT: &str = "INSERT INTO migrate_history ({CHANGE}, version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty) VALUES (9, '9.0.0', 'future', '', 'code', 'up', TRUE, '2026-11-22 00:00:00', 0, NULL, FALSE)";
const CONFIG: &str = "refused before connecting; nothing created or changed";

/// Every case of the catalogue. Each runs on a database migrated to 1.0.2
/// by the application above; schema, history and data are compared before
/// and after.
const CASES: &[Case] = &[
    Case {
        input: "`APPLICATION_VERSION=v1.0.3` (a `v` prefix)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("APPLICATION_VERSION", "v1.0.3")],
        file: None,
        setup: "",
        code: 1,
        error: "APPLICATION_VERSION=`v1.0.3` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`APPLICATION_VERSION=1.1` (loose: no patch)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("APPLICATION_VERSION", "1.1")],
        file: None,
        setup: "",
        code: 1,
        error: "APPLICATION_VERSION=`1.1` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`APPLICATION_VERSION=\" 1.0.3\"` (whitespace)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("APPLICATION_VERSION", " 1.0.3")],
        file: None,
        setup: "",
        code: 1,
        error: "APPLICATION_VERSION=` 1.0.3` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`APPLICATION_VERSION=\"1.0.3'; DROP TABLE items; --\"` (injection)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("APPLICATION_VERSION", "1.0.3'; DROP TABLE items; --")],
        file: None,
        setup: "",
        code: 1,
        error: "APPLICATION_VERSION=`1.0.3'; DROP TABLE items; --` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`--app-version 1.0` on the command line",
        args: &["--database-url", "{URL}", "--app-version", "1.0", "up"],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "error: app_version=`1.0` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`down --to \"1.0.0'; DROP TABLE items; --\"` (injection through a version)",
        args: &[
            "--database-url",
            "{URL}",
            "down",
            "--to",
            "1.0.0'; DROP TABLE items; --",
        ],
        envs: &[],
        file: None,
        setup: "",
        code: 2,
        error: "error: invalid value '1.0.0'; DROP TABLE items; --' for '--to <VERSION>': `1.0.0'; DROP TABLE items; --` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`--table 'x\"; DROP TABLE items; --'` (injection through the table name)",
        args: &[
            "--database-url",
            "{URL}",
            "--table",
            "x\"; DROP TABLE items; --",
            "up",
        ],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "`x\"; DROP TABLE items; --` is not a valid table name",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`MIGRATE_ENV=\"dev'; DROP TABLE items; --\"` (injection through the environment)",
        args: &["up"],
        envs: &[("MIGRATE_ENV", "dev'; DROP TABLE items; --")],
        file: Some(("migrate.toml", "[dev]\nurl = \"{URL}\"\n")),
        setup: "",
        code: 1,
        error: "`dev'; DROP TABLE items; --` is not a valid environment name",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "a script `1.0.1+build.2` where `1.0.1` is applied (only build metadata differs)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("REL_BUILD_META", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "1.0.1+build.2 `seed_items` and the applied 1.0.1 `seed_items` differ only in build metadata, which semver ignores",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "the database is at 9.0.0, above every script this build knows, at start-up (an old release in a rolling deploy)",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[("REL_STARTUP", "1")],
        file: None,
        setup: FUTURE_CODE_SCRIPT,
        code: 0,
        error: "the database is ahead of the application: 9.0.0 `future` is applied above the application version 1.0.2 (the Cargo package version); start-up leaves it in place and changes nothing.",
        guarantee: TOLERATED,
        on: On::Every,
    },
    Case {
        input: "the same, with `MIGRATE_WHEN_AHEAD=refuse`",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[("REL_STARTUP", "1"), ("MIGRATE_WHEN_AHEAD", "refuse")],
        file: None,
        setup: FUTURE_CODE_SCRIPT,
        code: 1,
        error: "the database is ahead of the application version 1.0.2 (the Cargo package version): 9.0.0 `future` is applied above it; the policy for a database ahead is to refuse, so nothing was changed. Deploy a build at 9.0.0 or later",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "the same, with `MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.2`, but 9.0.0 is a code script this build does not have",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[
            ("REL_STARTUP", "1"),
            ("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.2"),
        ],
        file: None,
        setup: FUTURE_CODE_SCRIPT,
        code: 1,
        error: "cannot downgrade the database to 1.0.2; nothing was run:\n  - code scripts this build does not have: 9.0.0 `future`; their `down` is compiled into the build that applied them: run `down --to 1.0.2` with a build that has them (the application at 9.0.0 or later, whose build applied them)",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "an SQL migration this build does not have, applied before `down` SQL was recorded, and a downgrade authorized across it",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[
            ("REL_STARTUP", "1"),
            ("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.2"),
        ],
        file: None,
        setup: "INSERT INTO migrate_history ({CHANGE}, version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty) VALUES (9, '1.1.0', 'old_sql', '', 'sql', 'up', TRUE, '2026-11-22 00:00:00', 0, 'abc', FALSE)",
        code: 1,
        error: "not in this build, and applied before their `down` SQL was recorded: 1.1.0 `old_sql`; nothing says how to revert them, and it is not guessed",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`MIGRATE_AUTHORIZE_DOWNGRADE_TO=yes` (not a version)",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[
            ("REL_STARTUP", "1"),
            ("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "yes"),
        ],
        file: None,
        setup: "",
        code: 1,
        error: "MIGRATE_AUTHORIZE_DOWNGRADE_TO=`yes` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`MIGRATE_WHEN_AHEAD=ignore` (not a policy)",
        args: &["--database-url", "{URL}", "status"],
        envs: &[("MIGRATE_WHEN_AHEAD", "ignore")],
        file: None,
        setup: "",
        code: 1,
        error: "MIGRATE_WHEN_AHEAD=`ignore` is not a policy: expected `tolerate` or `refuse`",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "a tracking table with other columns (another tool's table)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[],
        file: None,
        setup: "DROP TABLE migrate_history; CREATE TABLE migrate_history (id INTEGER PRIMARY KEY, script VARCHAR(100))",
        code: 1,
        error: "error: reading the tracking table `migrate_history` (if that table belongs to another tool or was changed by hand, choose another name with `table`, or restore the columns docs/tracking-tables.md lists)",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "a tracking table missing a column (`dirty` dropped)",
        args: &["--database-url", "{URL}", "--app-version", "1.1.0", "up"],
        envs: &[],
        file: None,
        setup: "ALTER TABLE migrate_history DROP COLUMN dirty",
        code: 1,
        error: "error: reading the tracking table `migrate_history` (if that table belongs",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "a history row whose version is `banana`",
        args: &["--database-url", "{URL}", "up"],
        envs: &[],
        file: None,
        setup: "UPDATE migrate_history SET version = 'banana' WHERE version = '1.0.1'",
        code: 1,
        error: "the tracking table `migrate_history` holds an invalid version in change 2: `banana` is not a semver version",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "an applied SQL migration edited since (`1.0.0`'s `up.sql`)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("REL_EDITED", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "migration 1.0.0 `create_items` was applied but its SQL has changed since",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "an SQL migration with no statement (only a comment) listed by hand (`embed_sql!` refuses it at build time, as it does an empty or non-UTF-8 `up.sql`: `tests/embed_sql_build.rs`)",
        args: &["--database-url", "{URL}", "--app-version", "1.1.0", "up"],
        envs: &[("REL_EMPTY_SQL", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "SQL migration 1.1.0 `blank` at tests/reliability.rs:",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "SQL listed by hand that ends its transaction (`COMMIT` on line 2; `embed_sql!` refuses it at build time: `tests/embed_sql_build.rs`)",
        args: &["--database-url", "{URL}", "--app-version", "1.1.0", "up"],
        envs: &[("REL_COMMITS", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "SQL migration 1.1.0 `commits` at tests/reliability.rs:",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`up.sql` that ends its transaction (`COMMIT`) in an SQL migration folder",
        args: &[],
        envs: &[],
        file: None,
        setup: "",
        code: 101,
        error: "`migrations/1.4.0_commits/up.sql`, line 2: `COMMIT` would end the transaction the migration runs in",
        guarantee: "a compile error: no binary is built",
        on: On::Build,
    },
    Case {
        input: "`--database-url \"host=h user=u password = Hunter2 dbname=d\"` (libpq keywords, spaces around `=`)",
        args: &[
            "--database-url",
            "host=h user=u password = Hunter2 dbname=d",
            "status",
        ],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "cannot tell the driver from the URL `host=h user=u password=*** dbname=d`",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "an empty `up.sql` in an SQL migration folder",
        args: &[],
        envs: &[],
        file: None,
        setup: "",
        code: 101,
        error: "`migrations/1.1.0_empty/up.sql` is empty; write the migration, or remove the folder",
        guarantee: "a compile error: no binary is built",
        on: On::Build,
    },
    Case {
        input: "a non-UTF-8 `up.sql` (Latin-1)",
        args: &[],
        envs: &[],
        file: None,
        setup: "",
        code: 101,
        error: "`migrations/1.2.0_latin1/up.sql` is not valid UTF-8",
        guarantee: "a compile error: no binary is built",
        on: On::Build,
    },
    Case {
        input: "SQL that fails halfway through a three-statement file",
        args: &["--database-url", "{URL}", "--app-version", "1.1.0", "up"],
        envs: &[("REL_HALFWAY", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "error: migration 1.1.0 `halfway` (up) failed: ",
        guarantee: "its first statement is rolled back with the rest (on SQLite and PostgreSQL); schema, history and data unchanged",
        on: On::Every,
    },
    Case {
        input: "a script `0.9.0` below the applied 1.0.2 (out of order)",
        args: &["--database-url", "{URL}", "up"],
        envs: &[("REL_OUT_OF_ORDER", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "0.9.0 `early` added out of order: the database is already at 1.0.2",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "a stray `APPLICATION_VERSION=0.1.0` at start-up, below every script",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[("APPLICATION_VERSION", "0.1.0"), ("REL_STARTUP", "1")],
        file: None,
        setup: "",
        code: 0,
        error: "the database is ahead of the application: 1.0.2 `create_tags`, 1.0.1 `seed_items`, 1.0.0 `create_items` are applied above the application version 0.1.0 (APPLICATION_VERSION); start-up leaves them in place and changes nothing.",
        guarantee: TOLERATED,
        on: On::Every,
    },
    Case {
        input: "`APPLICATION_VERSION=1.0.0` with `MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0` at start-up, across `1.0.2`, which has no down",
        args: &["--database-url", "{URL}", "start-up"],
        envs: &[
            ("APPLICATION_VERSION", "1.0.0"),
            ("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.0"),
            ("REL_STARTUP", "1"),
        ],
        file: None,
        setup: "",
        code: 1,
        error: "cannot downgrade the database to 1.0.0; nothing was run:\n  - no `down`: 1.0.2 `create_tags`",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`resolve --version 1.0.1 --completed` with no step in progress",
        args: &[
            "--database-url",
            "{URL}",
            "resolve",
            "--version",
            "1.0.1",
            "--completed",
        ],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "nothing to resolve for 1.0.1 in `migrate_history`: no step is in progress",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "`baseline --version 1.0.1` on a database with history",
        args: &["--database-url", "{URL}", "baseline", "--version", "1.0.1"],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "baseline refused on `migrate_history`, nothing was recorded:",
        guarantee: UNCHANGED,
        on: On::Every,
    },
    Case {
        input: "a step left in progress by a crash, then `up`",
        args: &["--database-url", "{URL}", "up"],
        envs: &[],
        file: None,
        setup: "UPDATE migrate_history SET dirty = TRUE WHERE version = '1.0.2'",
        code: 1,
        error: "migration 1.0.2 `create_tags` (up) started in change 3 at ",
        guarantee: "refused until `resolve`; schema and history unchanged",
        on: On::Every,
    },
    Case {
        input: "a server that accepts the connection and never answers",
        args: &["--database-url", "{SILENT}", "up"],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "error: cannot connect to postgres://postgres:***@127.0.0.1:",
        guarantee: "a clear error after the connect timeout (10 s unless the URL sets `connect_timeout`), not a hang",
        on: On::Servers,
    },
    Case {
        input: "wrong credentials",
        args: &["--database-url", "{WRONG_PASSWORD}", "up"],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "password authentication failed for user \"migrate_password_user\"",
        guarantee: "refused by the server at connection; nothing changed",
        on: On::Servers,
    },
    Case {
        input: "a read-only SQLite database (`sqlite://file:<path>?mode=ro`) with work to do",
        args: &[
            "--database-url",
            "sqlite://file:{PATH}?mode=ro",
            "--app-version",
            "1.1.0",
            "up",
        ],
        envs: &[("REL_HALFWAY", "1")],
        file: None,
        setup: "",
        code: 1,
        error: "attempt to write a readonly database",
        guarantee: UNCHANGED,
        on: On::Sqlite,
    },
    Case {
        input: "a SQLite database in a directory that does not exist",
        args: &["--database-url", "{DIR}/missing/app.db", "up"],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "error: cannot connect to ",
        guarantee: "refused; no directory or file created",
        on: On::Sqlite,
    },
    Case {
        input: "migrate.toml: `--env prod`, which the file does not have",
        args: &["--env", "prod", "up"],
        envs: &[],
        file: Some(("migrate.toml", "[dev]\nurl = \"{URL}\"\n")),
        setup: "",
        code: 1,
        error: "migrate.toml: no environment `prod`; the file defines `dev`",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "migrate.toml: `url = { env = \"NOT_SET_ANYWHERE\" }`",
        args: &["up"],
        envs: &[],
        file: Some((
            "migrate.toml",
            "[dev]\nurl = { env = \"NOT_SET_ANYWHERE\" }\n",
        )),
        setup: "",
        code: 1,
        error: "migrate.toml, environment `dev`, key `url`: the variable `NOT_SET_ANYWHERE` is not set",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "database.json: `\"driver\": \"oracle\"`",
        args: &["up"],
        envs: &[],
        file: Some((
            "database.json",
            r#"{"dev": {"driver": "oracle", "database": "x"}}"#,
        )),
        setup: "",
        code: 1,
        error: "database.json, environment `dev`, key `driver`: unknown driver `oracle`",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "migrate.toml that is not TOML",
        args: &["up"],
        envs: &[],
        file: Some(("migrate.toml", "[dev\nurl = \"{URL}\"\n")),
        setup: "",
        code: 1,
        error: "migrate.toml is malformed: ",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "database.json that is not JSON",
        args: &["up"],
        envs: &[],
        file: Some((
            "database.json",
            "{\"dev\": {\"driver\": \"sqlite3\" \"filename\": \"dev.db\"}}",
        )),
        setup: "",
        code: 1,
        error: "database.json is malformed: expected `,` or `}` at line 1 column 30",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "migrate.toml: `lock_timeout = \"soon\"`",
        args: &["up"],
        envs: &[],
        file: Some((
            "migrate.toml",
            "[dev]\nurl = \"{URL}\"\nlock_timeout = \"soon\"\n",
        )),
        setup: "",
        code: 1,
        error: "migrate.toml, environment `dev`, key `lock_timeout`: expected a whole number of seconds",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "database.json: `defaultEnv` from `NODE_ENV`, set to an environment the file lacks (unset, it is `dev`, as db-migrate reads it)",
        args: &["up"],
        envs: &[("NODE_ENV", "staging")],
        file: Some((
            "database.json",
            r#"{"defaultEnv": {"ENV": "NODE_ENV"}, "dev": {"driver": "sqlite3", "filename": "dev.db"}}"#,
        )),
        setup: "",
        code: 1,
        error: "database.json: no environment `staging`; the file defines `dev`; choose one with --env or MIGRATE_ENV",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "migrate.toml: an unknown key (`tabel`)",
        args: &["up"],
        envs: &[],
        file: Some(("migrate.toml", "[dev]\nurl = \"{URL}\"\ntabel = \"x\"\n")),
        setup: "",
        code: 1,
        error: "migrate.toml, environment `dev`: unknown key `tabel`",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "no configuration at all (no file, no `--database-url`, no `DATABASE_URL`)",
        args: &["up"],
        envs: &[],
        file: None,
        setup: "",
        code: 1,
        error: "error: no database configured: pass --database-url, set DATABASE_URL, or write migrate.toml",
        guarantee: CONFIG,
        on: On::Every,
    },
    Case {
        input: "`down --steps lots` (not a number)",
        args: &["--database-url", "{URL}", "down", "--steps", "lots"],
        envs: &[],
        file: None,
        setup: "",
        code: 2,
        error: "invalid value 'lots' for '--steps <N>'",
        guarantee: "usage error (exit 2); nothing runs",
        on: On::Every,
    },
];

/// Schema, history and the application's data, as text.
fn snapshot<D: Db>(conn: &mut D::Conn) -> Vec<String> {
    let mut all = D::schema(conn);
    let tables = D::tables(conn);
    // The rows, when the table still has the columns the query reads (the
    // schema lines above cover a table that does not).
    let has = |column: &str| {
        all.iter()
            .any(|line| line.contains(TABLE) && line.contains(column))
    };
    if has("checksum") {
        // Every column; `dirty` unless a case dropped it.
        let dirty = if has("dirty") { ", ':', dirty" } else { "" };
        let rows = D::strings(
            conn,
            &format!(
                "SELECT CONCAT({}, ':', version, ':', name, ':', description, ':', kind, ':', direction, ':', executed, ':', applied_at, ':', duration_ms, ':', COALESCE(checksum, ''){dirty}) AS s FROM {TABLE} ORDER BY {}",
                D::CHANGE,
                D::CHANGE
            ),
        );
        all.extend(rows);
    }
    if tables.contains(&"items".to_owned()) {
        all.extend(D::strings(
            conn,
            "SELECT CONCAT('items:', id, ':', name) AS s FROM items ORDER BY id",
        ));
    }
    if tables.contains(&"tags".to_owned()) {
        all.extend(D::strings(
            conn,
            "SELECT CONCAT('tags:', id) AS s FROM tags ORDER BY id",
        ));
    }
    all
}

/// Runs every case that applies to `D`: each on a freshly migrated
/// database, comparing before and after.
fn catalogue<D: Db>(silent: &str, wrong_password: Option<&str>) -> Result<String, String> {
    let on = if D::NAME == "sqlite" {
        On::Sqlite
    } else {
        On::Servers
    };
    let mut ran = 0;
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        if case.on != On::Every && case.on != on {
            continue;
        }
        let Some(db) = D::create() else {
            return Ok("skipped".into());
        };
        ran += 1;
        if let Err(e) = run_case::<D>(i, case, &db, silent, wrong_password) {
            failures.push(e);
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n\n"));
    Ok(format!(
        "{ran} bad inputs, each refused (or, for a database ahead, tolerated) with its message, and nothing changed"
    ))
}

/// One case of the catalogue on a fresh database.
fn run_case<D: Db>(
    i: usize,
    case: &Case,
    db: &D,
    silent: &str,
    wrong_password: Option<&str>,
) -> Result<(), String> {
    {
        let dir = tempfile::tempdir().unwrap();
        let url = db.child_url();
        let out = app_run(D::NAME, dir.path(), &["--database-url", &url, "up"], &[])?;
        ensure!(
            out.code == 0,
            "case {}: migrating first failed: {out:?}",
            i + 1
        );
        let mut conn = db.connect();
        if !case.setup.is_empty() {
            conn.batch_execute(&case.setup.replace("{CHANGE}", D::CHANGE))
                .map_err(|e| format!("case {}: setup: {e}", i + 1))?;
        }
        let before = snapshot::<D>(&mut conn);
        let fill = |text: &str| {
            text.replace("{URL}", &url)
                .replace("{PATH}", &db.url())
                .replace("{DIR}", &dir.path().display().to_string())
                .replace("{SILENT}", silent)
                .replace("{WRONG_PASSWORD}", wrong_password.unwrap_or(""))
        };
        if let Some((name, text)) = case.file {
            std::fs::write(dir.path().join(name), fill(text)).unwrap();
        }
        let files_before = std::fs::read_dir(dir.path()).unwrap().count();
        let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, String)> = case
            .envs
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        let started = Instant::now();
        let out = app_run(D::NAME, dir.path(), &args, &envs)?;
        // The command line's connect timeout is 10 s: a hang is a failure.
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "case {} ({}): took {:?}",
            i + 1,
            case.input,
            started.elapsed()
        );
        ensure!(
            out.code == case.code && out.stderr.contains(case.error),
            "case {} ({}): expected exit {} and {:?}, got {out:?}",
            i + 1,
            case.input,
            case.code,
            case.error
        );
        let after = snapshot::<D>(&mut conn);
        ensure!(
            before == after,
            "case {} ({}): the database changed:\nbefore {before:?}\nafter  {after:?}",
            i + 1,
            case.input
        );
        ensure!(
            std::fs::read_dir(dir.path()).unwrap().count() == files_before,
            "case {} ({}): files were created",
            i + 1,
            case.input
        );
    }
    Ok(())
}

/// The catalogue as the docs show it.
fn catalogue_table() -> String {
    let mut table = String::from(
        "| # | input | error (checked verbatim, abridged here) | guarantee (checked) | on |\n|---|---|---|---|---|\n",
    );
    for (i, case) in CASES.iter().enumerate() {
        let error = case.error.replace('\n', " ").replace('|', "\\|");
        let error = if error.chars().count() > 110 {
            format!("{}…", error.chars().take(110).collect::<String>())
        } else {
            error
        };
        let exit = if case.on == On::Build {
            "build fails".to_owned()
        } else {
            format!("exit {}", case.code)
        };
        table.push_str(&format!(
            "| {} | {} | `{}` ({exit}) | {} | {} |\n",
            i + 1,
            case.input.replace('|', "\\|"),
            error.replace('`', "'"),
            case.guarantee,
            match case.on {
                On::Every => "SQLite, PostgreSQL",
                On::Sqlite => "SQLite",
                On::Servers => "PostgreSQL",
                On::Build => "build (`tests/embed_sql_build.rs`)",
            }
        ));
    }
    table
}

/// The docs' table and the cases agree (or, with
/// `MIGRATE_WRITE_CATALOGUE=1`, the table is rewritten).
fn catalogue_docs_match() -> Result<String, String> {
    const START: &str = "<!-- catalogue:start -->\n";
    const END: &str = "<!-- catalogue:end -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reliability.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (head, rest) = text.split_once(START).ok_or("no catalogue start marker")?;
    let (_, tail) = rest.split_once(END).ok_or("no catalogue end marker")?;
    let expected = format!("{head}{START}{}{END}{tail}", catalogue_table());
    if var("MIGRATE_WRITE_CATALOGUE").is_some() {
        std::fs::write(&path, expected).unwrap();
        return Ok("docs/reliability.md rewritten".into());
    }
    ensure!(
        text == expected,
        "docs/reliability.md's catalogue differs from the cases: run MIGRATE_WRITE_CATALOGUE=1 cargo test --test reliability -- catalogue_docs"
    );
    Ok(format!(
        "docs/reliability.md lists the {} cases",
        CASES.len()
    ))
}

/// A TCP server that accepts connections and never says a word.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

// ---------------------------------------------------------------------------
// The runner.

type Test<'a> = (String, Box<dyn FnOnce() -> Result<String, String> + 'a>);

fn main() -> ExitCode {
    if var("REL_CHILD").is_some() {
        return child();
    }
    let full = var("MIGRATE_RELIABILITY").as_deref() == Some("full");
    let (processes, rounds, kills) = if full { (16, 20, 50) } else { (16, 4, 12) };
    let seed = var("MIGRATE_RELIABILITY_SEED")
        .map(|s| s.parse().expect("MIGRATE_RELIABILITY_SEED is a number"))
        .unwrap_or_else(|| fastrand::u64(..));
    println!(
        "reliability suite: {} size ({processes} processes x {rounds} rounds, {kills} kills per backend), seed {seed}",
        if full {
            "full"
        } else {
            "bounded (MIGRATE_RELIABILITY=full for the full size)"
        }
    );
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    let silent = silent_server();

    #[cfg(feature = "postgres")]
    let (silent_url, wrong_url) = postgres_urls(silent);
    let mut tests: Vec<Test<'_>> = Vec::new();
    macro_rules! on_backend {
        ($db:ty, $name:literal, $silent:expr, $wrong:expr) => {
            tests.push((
                format!("{}::concurrent_deploys", $name),
                Box::new(move || concurrent_deploys::<$db>(processes, rounds)),
            ));
            tests.push((
                format!("{}::failures_at_every_position", $name),
                Box::new(failures::<$db>),
            ));
            tests.push((
                format!("{}::crash_outside_a_transaction", $name),
                Box::new(crash_outside_a_transaction::<$db>),
            ));
            tests.push((
                format!("{}::bad_input_catalogue", $name),
                Box::new(move || catalogue::<$db>($silent, $wrong)),
            ));
        };
    }
    on_backend!(support::Sqlite, "sqlite", "", None);
    tests.push((
        "sqlite::sigkill_crashes".into(),
        Box::new(move || crashes::<support::Sqlite>(kills, seed)),
    ));
    #[cfg(feature = "postgres")]
    {
        let (silent_url, wrong_url) = (silent_url.as_str(), wrong_url.as_deref());
        on_backend!(support::Postgres, "postgres", silent_url, wrong_url);
        tests.push((
            "postgres::sigkill_crashes".into(),
            Box::new(move || crashes::<support::Postgres>(kills, seed)),
        ));
        tests.push((
            "postgres::deploys_through_pgbouncer".into(),
            Box::new(move || deploys_through_pgbouncer(processes)),
        ));
    }
    #[cfg(feature = "mysql")]
    {
        tests.push((
            "mysql::concurrent_deploys".into(),
            Box::new(move || concurrent_deploys::<support::Mysql>(processes, rounds)),
        ));
        tests.push((
            "mysql::failures_at_every_position".into(),
            Box::new(failures::<support::Mysql>),
        ));
        tests.push((
            "mysql::crash_outside_a_transaction".into(),
            Box::new(crash_outside_a_transaction::<support::Mysql>),
        ));
    }
    tests.push((
        "catalogue_docs_match".into(),
        Box::new(catalogue_docs_match),
    ));

    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(test)) {
            Ok(Ok(figure)) => println!(
                "test {name} ... ok ({:.1} s): {figure}",
                started.elapsed().as_secs_f64()
            ),
            Ok(Err(e)) => {
                failed += 1;
                println!("test {name} ... FAILED\n{e}\n");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED (panicked)");
            }
        }
    }
    // 5. Secrets: no output of the suite holds the password.
    let outputs = OUTPUTS.lock().unwrap();
    let bytes: usize = outputs.iter().map(String::len).sum();
    let leaks = outputs.iter().filter(|o| o.contains(SECRET_STEM)).count();
    // The password did reach the outputs, masked (when a server ran).
    let masked = outputs.iter().filter(|o| o.contains(":***@")).count();
    let server_ran = POSTGRES_CLI_RAN.load(std::sync::atomic::Ordering::SeqCst);
    if leaks == 0 && server_ran && masked == 0 {
        failed += 1;
        println!(
            "test password_grep ... FAILED: no output shows the masked URL, so the grep proves nothing"
        );
    } else if leaks == 0 {
        println!(
            "test password_grep ... ok: {} outputs ({bytes} bytes) of child processes, none holds the password ({masked} show it masked)",
            outputs.len()
        );
    } else {
        failed += 1;
        println!("test password_grep ... FAILED: {leaks} outputs hold the password");
    }
    println!(
        "\ntest result: {} passed, {failed} failed",
        ran + 1 - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The PostgreSQL URLs of two cases: a server that never answers, and the
/// test server with a wrong password for a role that needs one.
#[cfg(feature = "postgres")]
fn postgres_urls(silent_port: u16) -> (String, Option<String>) {
    use diesel::{Connection, RunQueryDsl};
    let silent = format!("postgres://postgres:{SECRET_ENCODED}@127.0.0.1:{silent_port}/postgres");
    let Some(admin) = support::postgres_admin_url() else {
        return (silent, None);
    };
    let mut conn = diesel::PgConnection::establish(&admin).unwrap();
    let exists: Vec<String> = support::Postgres::strings(
        &mut conn,
        "SELECT rolname AS s FROM pg_roles WHERE rolname = 'migrate_password_user'",
    );
    if exists.is_empty() {
        diesel::sql_query("CREATE ROLE migrate_password_user LOGIN PASSWORD 'the-right-one'")
            .execute(&mut conn)
            .unwrap();
    }
    let rest = admin.split_once("://").unwrap().1;
    let host_and_db = rest.split_once('@').unwrap().1;
    (
        silent,
        Some(format!(
            "postgres://migrate_password_user:{SECRET_ENCODED}@{host_and_db}"
        )),
    )
}
