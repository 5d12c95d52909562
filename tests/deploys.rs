//! Deploys and rollbacks, as real deployments run them: many processes of
//! an old and a new release starting against one database, a stray
//! `APPLICATION_VERSION`, an old image against an upgraded database, an
//! irreversible data migration reverted and applied again, and `create`
//! across releases. On SQLite, PostgreSQL and MariaDB.
//!
//! This binary is also the application under test: with `DEP_CHILD` set,
//! `main` runs the application instead ([`child`]), and the suite drives it
//! as separate processes, as a deployment would.

mod support;

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use migrate::backend::Backend;
use migrate::{Migrator, Script};
use support::{Proc, Run, TestDb, history};

const TABLE: &str = "migrate_history";

// ---------------------------------------------------------------------------
// The application under test.

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// 1.0.0 creates `users`; 1.0.1 adds its `email` column, and its `down`
/// drops it.
fn create_users() -> Script {
    Script::sql(
        "1.0.0",
        "create_users",
        "CREATE TABLE users (name VARCHAR(100) NOT NULL);",
        Some("DROP TABLE users;"),
    )
}

fn add_email() -> Script {
    Script::sql(
        "1.0.1",
        "add_email",
        "ALTER TABLE users ADD COLUMN email VARCHAR(200);",
        Some("ALTER TABLE users DROP COLUMN email;"),
    )
}

/// The scripts of the build `DEP_BUILD`, and its package version.
fn build<C: Backend + SimpleConnection>(name: &str) -> (Vec<Script>, &'static str) {
    match name {
        // The release that added the email column, and the one before.
        "new" => (vec![create_users(), add_email()], "1.0.1"),
        "old" => (vec![create_users()], "1.0.0"),
        // The same new release, with 1.0.1 written in Rust.
        "new-code" => (
            vec![
                create_users(),
                support::code::<C>(
                    "1.0.1",
                    "ALTER TABLE users ADD COLUMN email VARCHAR(200)",
                    "ALTER TABLE users DROP COLUMN email",
                )
                .with_name("add_email_in_rust"),
            ],
            "1.0.1",
        ),
        // An irreversible data migration.
        "prices" => (
            vec![
                Script::sql(
                    "1.0.0",
                    "create_prices",
                    "CREATE TABLE prices (amount BIGINT NOT NULL);\nINSERT INTO prices VALUES (12);",
                    Some("DROP TABLE prices;"),
                ),
                Script::sql(
                    "1.0.1",
                    "prices_in_cents",
                    "UPDATE prices SET amount = amount * 100;",
                    None,
                ),
            ],
            "1.0.1",
        ),
        // The SQL folders under `DEP_DIR/migrations`, read as `embed_sql!`
        // embeds them, at the package version `DEP_PACKAGE`; with
        // `DEP_SHIPS_UP_TO`, only those at or below it (the image of an
        // older release).
        "disk" => {
            let package = leak(var("DEP_PACKAGE").expect("DEP_PACKAGE"));
            let ships: Option<migrate::Version> =
                var("DEP_SHIPS_UP_TO").map(|v| v.parse().unwrap());
            let dir = Path::new(&var("DEP_DIR").unwrap()).join("migrations");
            let mut scripts = Vec::new();
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let folder = entry.file_name().to_string_lossy().into_owned();
                let (version, name) = migrate_core::parse_folder_name(&folder).unwrap();
                if ships.as_ref().is_some_and(|s| version > *s) {
                    continue;
                }
                let read = |file: &str| std::fs::read_to_string(entry.path().join(file)).ok();
                scripts.push(Script::sql(
                    leak(version.to_string()),
                    leak(name.to_owned()),
                    leak(read("up.sql").unwrap()),
                    read("down.sql").map(leak),
                ));
            }
            (scripts, package)
        }
        other => panic!("unknown build {other}"),
    }
}

/// `DEP_CHILD=app`: the application's start-up on `DEP_URL`
/// (`Migrator::run`, the process environment as it is), then its work
/// (`DEP_WORK`: `insert` a user, or `insert-email` a user with an email).
/// Exit 1 when start-up fails, 2 when the work fails.
/// `DEP_CHILD=cli`: the command line of the same application.
fn child() -> ExitCode {
    match var("DEP_BACKEND").as_deref() {
        Some("sqlite") => run_child::<diesel::SqliteConnection>(),
        #[cfg(feature = "postgres")]
        Some("postgres") => run_child::<diesel::PgConnection>(),
        #[cfg(feature = "mysql")]
        Some("mysql") => run_child::<diesel::MysqlConnection>(),
        other => panic!("unknown backend {other:?}"),
    }
}

fn run_child<C: Backend + SimpleConnection>() -> ExitCode {
    let (scripts, package) = build::<C>(&var("DEP_BUILD").unwrap());
    let mut migrator = Migrator::new(package)
        .only_listed_scripts()
        .scripts(scripts)
        .lock_timeout(Duration::from_secs(120));
    if var("DEP_CHILD").as_deref() == Some("configured-app") {
        // The start-up of an application that reads migrate.toml, as the
        // command line does.
        let env = match migrate::config::load(&migrate::config::Request::default()) {
            Ok(env) => env,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        migrator = migrator.configure(&env.settings);
    }
    if var("DEP_CHILD").as_deref() == Some("cli") {
        return migrate::cli::Cli::new(migrator).run();
    }
    // The library's logs, as an application collects them: warnings and
    // up, the usual default.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    if let Some(go) = var("DEP_GO") {
        // A wave starts together.
        let waited = Instant::now();
        while !Path::new(&go).exists() {
            assert!(
                waited.elapsed() < Duration::from_secs(120),
                "no start signal"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let url = var("DEP_URL").unwrap();
    let mut conn = match C::establish(&url) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("error: cannot connect: {e}");
            return ExitCode::from(1);
        }
    };
    match migrator.run(&mut conn) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    // The application's own work, as it would do it (waiting for SQLite's
    // write lock like any application).
    let _ = conn.batch_execute("PRAGMA busy_timeout = 30000");
    let name = var("DEP_NAME").unwrap_or_default();
    let work = match var("DEP_WORK").as_deref() {
        Some("insert") => format!("INSERT INTO users (name) VALUES ('{name}')"),
        Some("insert-email") => {
            format!("INSERT INTO users (name, email) VALUES ('{name}', '{name}@example.com')")
        }
        _ => return ExitCode::SUCCESS,
    };
    match conn.batch_execute(&work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the application's work failed: {e}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------
// Driving the application.

/// A child of `build` on `db`'s database, with `envs` set on top of a
/// clean environment.
fn command<D: TestDb>(db: &D, mode: &str, build: &str, envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    for v in [
        "DATABASE_URL",
        "MIGRATE_ENV",
        "APPLICATION_VERSION",
        "MIGRATE_AUTHORIZE_DOWNGRADE_TO",
        "MIGRATE_WHEN_AHEAD",
        "RUST_LOG",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("DEP_CHILD", mode)
        .env("DEP_BACKEND", D::NAME)
        .env("DEP_BUILD", build)
        .env("DEP_URL", db.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` to its end (at most 300 s: a hang is a failure).
fn finish(mut cmd: Command) -> Run {
    Proc::spawn(&mut cmd)
        .and_then(|p| p.finish(Duration::from_secs(300)))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one child to its end.
fn run<D: TestDb>(db: &D, mode: &str, build: &str, envs: &[(&str, &str)]) -> Run {
    finish(command(db, mode, build, envs))
}

/// The start-up of `build`.
fn start<D: TestDb>(db: &D, build: &str, envs: &[(&str, &str)]) -> Run {
    run(db, "app", build, envs)
}

/// Starts every command of a wave at once (each waits for a file written
/// once all are spawned), and waits for all.
fn wave(mut commands: Vec<Command>) -> Vec<Run> {
    let gate = tempfile::tempdir().unwrap();
    let go = gate.path().join("go");
    for cmd in &mut commands {
        cmd.env("DEP_GO", &go);
    }
    let procs: Vec<Proc> = commands
        .iter_mut()
        .map(|cmd| Proc::spawn(cmd).unwrap())
        .collect();
    std::fs::write(&go, "").unwrap();
    procs
        .into_iter()
        .map(|p| p.finish(Duration::from_secs(300)).unwrap())
        .collect()
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// `run` exited with `code` and printed every one of `texts`.
fn expect(run: &Run, code: i32, texts: &[&str]) -> Result<(), String> {
    ensure!(run.code == code, "expected exit {code}, got {run:?}");
    for text in texts {
        ensure!(run.all().contains(text), "expected {text:?} in {run:?}");
    }
    Ok(())
}

fn users<D: TestDb>(conn: &mut D::Conn, with_email: bool) -> Vec<String> {
    let sql = if with_email {
        "SELECT CONCAT(name, ':', COALESCE(email, '-')) AS s FROM users ORDER BY name"
    } else {
        "SELECT name AS s FROM users ORDER BY name"
    };
    D::strings(conn, sql)
}

fn columns<D: TestDb>(conn: &mut D::Conn, table: &str) -> Vec<String> {
    let mut columns = conn
        .columns(&migrate::backend::TableName::new(table).unwrap())
        .unwrap();
    columns.sort();
    columns
}

/// The history's `down` rows, as `version:authorized_by`.
fn downs<D: TestDb>(conn: &mut D::Conn) -> Vec<String> {
    D::strings(
        conn,
        &format!(
            "SELECT CONCAT(version, ':', COALESCE(authorized_by, '-')) AS s FROM {TABLE} WHERE direction = 'down' ORDER BY {}",
            D::CHANGE
        ),
    )
}

// ---------------------------------------------------------------------------
// The cases.

/// 16 instances of the old release and 16 of the new start together, three
/// times, as a rolling deploy restarts them. Half the old ones are the old
/// image (which does not have 1.0.1), half the new binary with
/// `APPLICATION_VERSION=1.0.0` (which has it, and used to revert it). The
/// new instances each write a user with an email, the old ones a user
/// without. The database ends at 1.0.1, with no `down` recorded, every row
/// and every email intact, and every process exits 0.
fn a_rolling_deploy_never_reverts_and_loses_nothing<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let mut warned = 0;
    for round in 1..=3 {
        let mut commands = Vec::new();
        for i in 0..16 {
            let name = format!("new_{round}_{i}");
            commands.push(command(
                &db,
                "app",
                "new",
                &[("DEP_WORK", "insert-email"), ("DEP_NAME", &name)],
            ));
            let name = format!("old_{round}_{i}");
            let old = [("DEP_WORK", "insert"), ("DEP_NAME", name.as_str())];
            commands.push(if i % 2 == 0 {
                command(&db, "app", "old", &old)
            } else {
                let mut envs = old.to_vec();
                envs.push(("APPLICATION_VERSION", "1.0.0"));
                command(&db, "app", "new", &envs)
            });
        }
        for out in wave(commands) {
            ensure!(out.code == 0, "round {round}: a process failed: {out:?}");
            ensure!(
                !out.stdout.contains("down"),
                "round {round}: a process reverted: {out:?}"
            );
            if out.stderr.contains("the database is ahead of the application: 1.0.1 `add_email` is applied above the application version 1.0.0") {
                warned += 1;
            }
        }
    }
    let mut conn = db.connect();
    let h = history::<D>(&mut conn, TABLE);
    ensure!(h == ["1.0.0:up", "1.0.1:up"], "history {h:?}");
    let rows = users::<D>(&mut conn, true);
    ensure!(rows.len() == 96, "96 users expected: {rows:?}");
    let with_email = rows.iter().filter(|r| r.ends_with("@example.com")).count();
    ensure!(
        with_email == 48,
        "every new instance's email kept: {rows:?}"
    );
    // Rounds 2 and 3 start on a database at 1.0.1: every old instance
    // there warned, whichever way it came to be at 1.0.0.
    ensure!(warned >= 32, "only {warned} old instances warned");
    Ok(format!(
        "3 rounds of 16 old + 16 new instances: 96 exits 0, no down, 96 users and 48 emails kept, {warned} warnings from old instances"
    ))
}

/// The same rolling deploy with a downgrade authorization given to every
/// old instance: exactly one downgrade happens in all three rounds, and the
/// process that ran it says so.
fn an_authorization_in_a_rolling_deploy_downgrades_once<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let mut reported = 0;
    for round in 1..=3 {
        let mut commands = Vec::new();
        for i in 0..16 {
            commands.push(command(&db, "app", "new", &[]));
            let auth = ("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.0");
            commands.push(if i % 2 == 0 {
                command(&db, "app", "old", &[auth])
            } else {
                command(&db, "app", "new", &[auth, ("APPLICATION_VERSION", "1.0.0")])
            });
        }
        for out in wave(commands) {
            ensure!(out.code == 0, "round {round}: a process failed: {out:?}");
            if out.stdout.contains(
                "downgrade authorized by MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0 (now spent)",
            ) {
                reported += 1;
                ensure!(out.stdout.contains("down 1.0.1 add_email (sql)"), "{out:?}");
            }
        }
    }
    let mut conn = db.connect();
    let d = downs::<D>(&mut conn);
    ensure!(d == ["1.0.1:1.0.0"], "one downgrade, authorized: {d:?}");
    ensure!(reported == 1, "{reported} processes reported a downgrade");
    Ok(
        "3 rounds of 16 + 16 with the authorization: 1 downgrade in all, reported by its process"
            .into(),
    )
}

/// A variable meant for something else (`APPLICATION_VERSION=0.1.0`) below
/// every script: start-up changes nothing, exits 0, and warns naming the
/// scripts ahead and the variable. Under the refuse policy it fails.
fn a_stray_application_version_changes_nothing<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    expect(
        &start(
            &db,
            "new",
            &[("DEP_WORK", "insert-email"), ("DEP_NAME", "ada")],
        ),
        0,
        &[],
    )?;
    let mut conn = db.connect();
    let before = (history::<D>(&mut conn, TABLE), users::<D>(&mut conn, true));
    let stray = [("APPLICATION_VERSION", "0.1.0")];
    expect(
        &start(&db, "new", &stray),
        0,
        &[
            "WARN",
            "the database is ahead of the application: 1.0.1 `add_email`, 1.0.0 `create_users` are applied above the application version 0.1.0 (APPLICATION_VERSION); start-up leaves them in place and changes nothing.",
            "database at 1.0.1, application at 0.1.0: nothing to do",
        ],
    )?;
    expect(
        &start(&db, "new", &[stray[0], ("MIGRATE_WHEN_AHEAD", "refuse")]),
        1,
        &[
            "error: the database is ahead of the application version 0.1.0 (APPLICATION_VERSION): 1.0.1 `add_email`, 1.0.0 `create_users` are applied above it; the policy for a database ahead is to refuse, so nothing was changed",
        ],
    )?;
    let after = (history::<D>(&mut conn, TABLE), users::<D>(&mut conn, true));
    ensure!(before == after, "changed: {before:?} -> {after:?}");
    ensure!(after.1 == ["ada:ada@example.com"], "{after:?}");
    Ok("exit 0 and a warning naming both scripts and APPLICATION_VERSION; refused under the refuse policy; nothing changed".into())
}

/// The image of the release before boots against the upgraded database:
/// it starts (with a warning), `status --check` says the database is
/// ahead, and with an authorization it reverts 1.0.1 with the `down` SQL
/// recorded when 1.0.1 was applied, once.
fn an_old_image_boots_and_can_roll_back_what_it_does_not_ship<D: TestDb>() -> Result<String, String>
{
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    expect(
        &start(
            &db,
            "new",
            &[("DEP_WORK", "insert-email"), ("DEP_NAME", "ada")],
        ),
        0,
        &[],
    )?;
    let mut conn = db.connect();
    let before = history::<D>(&mut conn, TABLE);
    // Every restart of an old instance boots, and changes nothing; the
    // warning offers what would work.
    for _ in 0..2 {
        expect(
            &start(&db, "old", &[("DEP_WORK", "insert"), ("DEP_NAME", "old")]),
            0,
            &[
                "the database is ahead of the application: 1.0.1 `add_email` is applied above the application version 1.0.0 (the Cargo package version); start-up leaves it in place and changes nothing.",
                "to revert, run `down --to 1.0.0` (this build can), or let start-up revert once with MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0",
            ],
        )?;
    }
    ensure!(
        history::<D>(&mut conn, TABLE) == before,
        "the old image changed the history"
    );
    let url = db.url();
    let status = run_cli(&db, "old", &["--database-url", &url, "status", "--check"]);
    expect(
        &status,
        4,
        &[
            "1.0.1          add_email",
            "applied, ahead of the application",
            "nothing to run: the database is ahead of the application version 1.0.0",
        ],
    )?;
    // The rollback: the old image, authorized.
    let auth = [("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.0")];
    expect(
        &start(&db, "old", &auth),
        0,
        &[
            "down 1.0.1 add_email (sql)",
            "migrated 1.0.1 -> 1.0.0 in 1 step",
            "downgrade authorized by MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0 (now spent)",
        ],
    )?;
    ensure!(
        !columns::<D>(&mut conn, "users").contains(&"email".to_owned()),
        "the email column is still there"
    );
    ensure!(
        users::<D>(&mut conn, false) == ["ada", "old", "old"],
        "rows lost"
    );
    // Restarts with the same setting do nothing more.
    expect(&start(&db, "old", &auth), 0, &["nothing to do"])?;
    // The new release comes back, and the spent authorization stays spent.
    expect(&start(&db, "new", &[]), 0, &["up   1.0.1 add_email (sql)"])?;
    expect(
        &start(&db, "old", &auth),
        0,
        &[
            "start-up leaves it in place and changes nothing. MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0 was spent at change 3",
            "an authorization is honoured once.",
            "to revert, run `down --to 1.0.0` (this build can), or let start-up revert once with MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0+2",
        ],
    )?;
    let d = downs::<D>(&mut conn);
    ensure!(d == ["1.0.1:1.0.0"], "{d:?}");
    // Under a new name, it runs once more.
    expect(
        &start(&db, "old", &[("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.0+2")]),
        0,
        &["down 1.0.1 add_email (sql)"],
    )?;
    Ok("boots with a warning (twice), status --check exits 4, reverts 1.0.1 from its recorded down SQL once per authorization".into())
}

/// Run the command line of `build`.
fn run_cli<D: TestDb>(db: &D, build: &str, args: &[&str]) -> Run {
    let mut cmd = command(db, "cli", build, &[]);
    cmd.args(args);
    finish(cmd)
}

/// `when_ahead` and `authorize_downgrade_to` per environment in
/// `migrate.toml`: read by the command line, and by a start-up that loads
/// the file.
fn the_policy_and_the_authorization_come_from_migrate_toml<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    expect(&start(&db, "new", &[]), 0, &[])?;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("migrate.toml"),
        format!(
            "[dev]\nurl = \"{url}\"\nwhen_ahead = \"refuse\"\n\n[rollback]\nurl = \"{url}\"\nauthorize_downgrade_to = \"1.0.0\"\n",
            url = db.url()
        ),
    )
    .unwrap();
    let in_dir = |mode: &str, args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = command(&db, mode, "old", envs);
        cmd.current_dir(dir.path()).args(args);
        finish(cmd)
    };
    expect(
        &in_dir("cli", &["status", "--check"], &[]),
        4,
        &[
            "start-up refuses: the database is ahead of the application version 1.0.0 (the Cargo package version): 1.0.1 `add_email` is applied above it; the policy for a database ahead is to refuse",
        ],
    )?;
    expect(
        &in_dir("configured-app", &[], &[]),
        1,
        &["error: the database is ahead of the application version 1.0.0"],
    )?;
    expect(
        &in_dir("cli", &["--env", "rollback", "plan"], &[]),
        0,
        &[
            "1.0.1 -> 1.0.0: 1 step(s), a downgrade authorized by authorize_downgrade_to = \"1.0.0\"",
            "down 1.0.1 add_email (sql) [not in this build: runs the down SQL recorded when it was applied]",
            "| ALTER TABLE users DROP COLUMN email;",
        ],
    )?;
    expect(
        &in_dir("cli", &["--env", "rollback", "status", "--check"], &[]),
        3,
        &[
            "a downgrade to 1.0.0 is authorized (authorize_downgrade_to = \"1.0.0\"): start-up reverts 1 script(s)",
        ],
    )?;
    expect(
        &in_dir("configured-app", &[], &[("MIGRATE_ENV", "rollback")]),
        0,
        &[
            "migrated 1.0.1 -> 1.0.0 in 1 step (",
            "downgrade authorized by authorize_downgrade_to = \"1.0.0\" (now spent)",
        ],
    )?;
    let d = downs::<D>(&mut db.connect());
    ensure!(d == ["1.0.1:1.0.0"], "{d:?}");
    Ok("refuse policy and authorization per environment: status --check, plan and a configured start-up".into())
}

/// What the old image cannot revert is named before anything runs: a code
/// script (only a build that has it can), and SQL applied before `down`
/// SQL was recorded (a tracking table from before, read as it is).
fn what_an_old_image_cannot_revert_is_named_not_guessed<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let auth = [("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.0")];
    expect(&start(&db, "new-code", &[]), 0, &[])?;
    let mut conn = db.connect();
    let before = history::<D>(&mut conn, TABLE);
    // Without an authorization it boots, and does not suggest one that
    // would fail.
    let booted = start(&db, "old", &[]);
    expect(
        &booted,
        0,
        &[
            "to revert, run `down --to 1.0.0` with a build that can: this one cannot (cannot downgrade the database to 1.0.0; nothing was run:   - code scripts this build does not have: 1.0.1 `add_email_in_rust`",
        ],
    )?;
    ensure!(
        !booted.stderr.contains("MIGRATE_AUTHORIZE_DOWNGRADE_TO"),
        "suggests an authorization that cannot work: {booted:?}"
    );
    expect(
        &start(&db, "old", &auth),
        1,
        &[
            "error: cannot downgrade the database to 1.0.0; nothing was run:\n  - code scripts this build does not have: 1.0.1 `add_email_in_rust`; their `down` is compiled into the build that applied them: run `down --to 1.0.0` with a build that has them (the application at 1.0.1 or later, whose build applied them)",
        ],
    )?;
    ensure!(history::<D>(&mut conn, TABLE) == before, "history changed");
    ensure!(
        columns::<D>(&mut conn, "users").contains(&"email".to_owned()),
        "the column went"
    );

    // A tracking table as the release before this change made it.
    let Some(legacy) = D::create() else {
        return Ok("skipped".into());
    };
    expect(&start(&legacy, "new", &[]), 0, &[])?;
    let mut conn = legacy.connect();
    for column in ["down_sql", "authorized_by"] {
        conn.batch_execute(&format!("ALTER TABLE {TABLE} DROP COLUMN {column}"))
            .map_err(|e| e.to_string())?;
    }
    let legacy_columns = columns::<D>(&mut conn, TABLE);
    // It reads as it is: the old image boots, with its warning.
    expect(
        &start(&legacy, "old", &[]),
        0,
        &["1.0.1 `add_email` is applied above the application version 1.0.0"],
    )?;
    expect(
        &start(&legacy, "old", &auth),
        1,
        &[
            "not in this build, and applied before their `down` SQL was recorded: 1.0.1 `add_email`; nothing says how to revert them, and it is not guessed: run `down --to 1.0.0` with a build that has them",
        ],
    )?;
    ensure!(
        columns::<D>(&mut conn, TABLE) == legacy_columns,
        "reading changed the table"
    );
    // The new build, which has 1.0.1, can: its `down --to`.
    let url = legacy.url();
    expect(
        &run_cli(
            &legacy,
            "new",
            &["--database-url", &url, "down", "--to", "1.0.0"],
        ),
        0,
        &["down 1.0.1 add_email (sql)"],
    )?;
    // Writing gave the table the new columns, and the rows written since
    // record their down.
    let now = columns::<D>(&mut conn, TABLE);
    ensure!(
        now.contains(&"down_sql".to_owned()) && now.contains(&"authorized_by".to_owned()),
        "{now:?}"
    );
    expect(
        &start(&legacy, "new", &[]),
        0,
        &["up   1.0.1 add_email (sql)"],
    )?;
    let recorded = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT({c}, ':', COALESCE(down_sql, 'NULL')) AS s FROM {TABLE} WHERE direction = 'up' ORDER BY {c}",
            c = D::CHANGE
        ),
    );
    ensure!(
        recorded == ["1:NULL", "2:NULL", "4:ALTER TABLE users DROP COLUMN email;"],
        "{recorded:?}"
    );
    expect(
        &start(&legacy, "old", &auth),
        0,
        &["down 1.0.1 add_email (sql)"],
    )?;
    Ok("a code script and SQL from before recorded downs are named, nothing run; a tracking table from before is read as it is and upgraded when written".into())
}

/// 1.0.1 multiplies prices by 100 and has no `down`. `down
/// --skip-irreversible` records it as reverted without running anything;
/// the next start-up at 1.0.1 records it as applied without running it
/// again: 12 stays 1200.
fn an_irreversible_data_migration_never_runs_twice<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let url = db.url();
    let prices =
        |conn: &mut D::Conn| D::strings(conn, "SELECT CONCAT(amount, '') AS s FROM prices");
    expect(
        &start(&db, "prices", &[]),
        0,
        &["up   1.0.1 prices_in_cents (sql)"],
    )?;
    let mut conn = db.connect();
    ensure!(prices(&mut conn) == ["1200"], "{:?}", prices(&mut conn));
    expect(
        &run_cli(&db, "prices", &["--database-url", &url, "down"]),
        1,
        &["no `down`: 1.0.1 `prices_in_cents`"],
    )?;
    expect(
        &run_cli(
            &db,
            "prices",
            &["--database-url", &url, "down", "--skip-irreversible"],
        ),
        0,
        &[
            "down 1.0.1 prices_in_cents (sql)",
            "(no down: recorded as reverted, its changes stay)",
            "1.0.1 `prices_in_cents` has no `down`: it is recorded as reverted, but nothing undoes its changes, which stay in the database",
        ],
    )?;
    expect(
        &run_cli(&db, "prices", &["--database-url", &url, "status"]),
        0,
        &[
            "1.0.1          prices_in_cents              sql   -                         reverted without running, changes kept",
        ],
    )?;
    for _ in 0..2 {
        expect(&start(&db, "prices", &[]), 0, &[])?;
    }
    ensure!(
        prices(&mut conn) == ["1200"],
        "ran twice: {:?}",
        prices(&mut conn)
    );
    let h = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, ':', direction, ':', CASE WHEN executed THEN 'ran' ELSE 'recorded' END) AS s FROM {TABLE} ORDER BY {}",
            D::CHANGE
        ),
    );
    ensure!(
        h == [
            "1.0.0:up:ran",
            "1.0.1:up:ran",
            "1.0.1:down:recorded",
            "1.0.1:up:recorded"
        ],
        "{h:?}"
    );
    Ok("12 became 1200 once: skipped on the way down, recorded (not run) on the way up".into())
}

/// `create` follows the application version: the migrations of a release
/// are its numbered pre-releases. At 1.0.0 it creates 1.0.0-1 and 1.0.0-2;
/// once the package is at 1.1.0, 1.1.0-1. Rolling the image back to 1.0.0
/// then names 1.1.0-1 as ahead, and an authorization reverts it.
fn create_follows_the_application_version_across_releases<D: TestDb>() -> Result<String, String> {
    let Some(db) = D::create() else {
        return Ok("skipped".into());
    };
    let dir = tempfile::tempdir().unwrap();
    let in_dir = |package: &'static str, ships: Option<&'static str>| {
        let (db, dir) = (&db, dir.path());
        move |mode: &str, args: &[&str], envs: &[(&str, &str)]| {
            let mut cmd = command(db, mode, "disk", envs);
            cmd.env("DEP_PACKAGE", package)
                .env("DEP_DIR", dir)
                .current_dir(dir)
                .args(args);
            if let Some(ships) = ships {
                cmd.env("DEP_SHIPS_UP_TO", ships);
            }
            finish(cmd)
        }
    };
    let write = |folder: &str, up: &str, down: &str| {
        let folder = dir.path().join("migrations").join(folder);
        std::fs::write(folder.join("up.sql"), up).unwrap();
        std::fs::write(folder.join("down.sql"), down).unwrap();
    };
    let v100 = in_dir("1.0.0", None);
    expect(
        &v100("cli", &["create", "create users"], &[]),
        0,
        &[
            "created migrations/1.0.0-1_create_users/up.sql",
            "note: 1.0.0-1 is migration 1 of release 1.0.0, the application version (the Cargo package version): it runs at 1.0.0 and sorts below it",
        ],
    )?;
    write(
        "1.0.0-1_create_users",
        "CREATE TABLE users (name VARCHAR(100) NOT NULL);",
        "DROP TABLE users;",
    );
    expect(
        &v100("cli", &["create", "add email"], &[]),
        0,
        &["created migrations/1.0.0-2_add_email/up.sql"],
    )?;
    write(
        "1.0.0-2_add_email",
        "ALTER TABLE users ADD COLUMN email VARCHAR(200);",
        "ALTER TABLE users DROP COLUMN email;",
    );
    expect(
        &v100("app", &[], &[]),
        0,
        &["migrated (empty) -> 1.0.0-2 in 2 steps"],
    )?;

    let v110 = in_dir("1.1.0", None);
    expect(
        &v110("cli", &["create", "add orders"], &[]),
        0,
        &["created migrations/1.1.0-1_add_orders/up.sql"],
    )?;
    write(
        "1.1.0-1_add_orders",
        "CREATE TABLE orders (id INTEGER NOT NULL);",
        "DROP TABLE orders;",
    );
    // The 1.0.0 image does not ship it, and says so if asked to create.
    expect(
        &v100("cli", &["create", "late"], &[]),
        0,
        &[
            "note: 1.1.0-2 is above the application version 1.0.0 (the Cargo package version), so start-up will not run it",
        ],
    )?;
    std::fs::remove_dir_all(dir.path().join("migrations/1.1.0-2_late")).unwrap();
    expect(
        &v110("app", &[], &[]),
        0,
        &["migrated 1.0.0-2 -> 1.1.0-1 in 1 step"],
    )?;

    // The rollback to the 1.0.0 image: the orders table is named as ahead.
    let rolled_back = in_dir("1.0.0", Some("1.0.0"));
    expect(
        &rolled_back("app", &[], &[]),
        0,
        &[
            "the database is ahead of the application: 1.1.0-1 `add_orders` is applied above the application version 1.0.0 (the Cargo package version)",
        ],
    )?;
    expect(
        &rolled_back("app", &[], &[("MIGRATE_AUTHORIZE_DOWNGRADE_TO", "1.0.0")]),
        0,
        &[
            "down 1.1.0-1 add_orders (sql)",
            "migrated 1.1.0-1 -> 1.0.0-2 in 1 step",
        ],
    )?;
    let tables = D::tables(&mut db.connect());
    ensure!(
        !tables.contains(&"orders".to_owned()) && tables.contains(&"users".to_owned()),
        "{tables:?}"
    );
    Ok("1.0.0-1, 1.0.0-2 at 1.0.0; 1.1.0-1 at 1.1.0; the 1.0.0 image names it ahead, and reverts it when authorized".into())
}

// ---------------------------------------------------------------------------
// The runner.

type Test = (String, fn() -> Result<String, String>);

macro_rules! on_every_backend {
    ($tests:ident, $($name:ident),* $(,)?) => {
        $($tests.push((format!("sqlite::{}", stringify!($name)), $name::<support::Sqlite>));)*
        #[cfg(feature = "postgres")]
        { $($tests.push((format!("postgres::{}", stringify!($name)), $name::<support::Postgres>));)* }
        #[cfg(feature = "mysql")]
        { $($tests.push((format!("mysql::{}", stringify!($name)), $name::<support::Mysql>));)* }
    };
}

fn main() -> ExitCode {
    if var("DEP_CHILD").is_some() {
        return child();
    }
    let mut tests: Vec<Test> = Vec::new();
    on_every_backend!(
        tests,
        a_rolling_deploy_never_reverts_and_loses_nothing,
        an_authorization_in_a_rolling_deploy_downgrades_once,
        a_stray_application_version_changes_nothing,
        an_old_image_boots_and_can_roll_back_what_it_does_not_ship,
        what_an_old_image_cannot_revert_is_named_not_guessed,
        the_policy_and_the_authorization_come_from_migrate_toml,
        an_irreversible_data_migration_never_runs_twice,
        create_follows_the_application_version_across_releases,
    );
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut ran, mut failed) = (0, 0);
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let started = Instant::now();
        match std::panic::catch_unwind(test) {
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
    println!("\ntest result: {} passed, {failed} failed", ran - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
