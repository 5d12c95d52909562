//! The command line, driven as a user drives it: this test binary is also
//! an application (`MIGRATE_CLI_CHILD` set) whose `main` calls
//! `migrate::cli`, and the tests run it as a separate process with real
//! arguments, environment and working directory, on SQLite files and on the
//! real PostgreSQL and MariaDB/MySQL servers.
//!
//! A custom harness (`harness = false`), like `processes.rs`.

mod support;

use std::path::Path;
use std::process::{Command, ExitCode};

use diesel::connection::SimpleConnection;
use migrate::Migrator;
use migrate::backend::Backend;
use support::{Run, TestDb, code, history};

migrate::embed_sql!("tests/fixtures/cli");

/// The application the tests drive: SQL 1.0.0, 1.0.2 and 1.1.0 from
/// `tests/fixtures/cli`, code 1.0.1 (which seeds a row), version 1.0.2.
fn child<C: Backend + SimpleConnection>() -> ExitCode {
    let seed = code::<C>(
        "1.0.1",
        "INSERT INTO items (id, name) VALUES (1, 'first')",
        "DELETE FROM items WHERE id = 1",
    )
    .with_name("seed_items");
    let migrator = Migrator::new("1.0.2").scripts([seed]);
    migrate::cli::Cli::new(migrator).run()
}

/// Runs the application (built for `backend`) with `args`, in `dir`, with
/// only `vars` from the migration-related environment.
fn cli(backend: &str, dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(args)
        .current_dir(dir)
        .env("MIGRATE_CLI_CHILD", backend);
    for var in [
        "DATABASE_URL",
        "MIGRATE_ENV",
        "APPLICATION_VERSION",
        "MIGRATE_AUTHORIZE_DOWNGRADE_TO",
        "MIGRATE_WHEN_AHEAD",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the test binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Checks the exit code and that stdout+stderr contain each of `needles`.
fn expect(run: &Run, code: i32, needles: &[&str]) -> Result<(), String> {
    ensure!(run.code == code, "expected exit {code}, got {run:?}");
    for n in needles {
        ensure!(
            run.all().contains(n),
            "expected {n:?} in the output of {run:?}"
        );
    }
    Ok(())
}

type Test = (&'static str, fn() -> Result<(), String>);

fn fresh<D: TestDb>() -> Result<Option<(D, tempfile::TempDir)>, String> {
    Ok(D::create().map(|db| (db, tempfile::tempdir().unwrap())))
}

/// status, plan, up, down, redo and their options, on one database.
fn every_subcommand_walks_a_database_through_its_life<D: TestDb>() -> Result<(), String> {
    let Some((db, dir)) = fresh::<D>()? else {
        return Ok(());
    };
    let url = db.url();
    let run = |args: &[&str]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        cli(D::NAME, dir.path(), &all, &[])
    };
    let tables = || D::tables(&mut db.connect());
    let hist = || history::<D>(&mut db.connect(), "migrate_history");

    // A fresh database: everything pending, and --check says so with code 3.
    let r = run(&["status", "--check"]);
    expect(
        &r,
        3,
        &[
            "database (empty)",
            "3 script(s) to apply to reach the application version 1.0.2: run `up`",
            "1.1.0",
            "above app version",
        ],
    )?;
    let pending = r.stdout.lines().filter(|l| l.ends_with(" pending")).count();
    ensure!(pending == 3, "3 pending rows expected: {r:?}");

    let r = run(&["status", "--json"]);
    expect(&r, 0, &[])?;
    let json: serde_json::Value =
        serde_json::from_str(&r.stdout).map_err(|e| format!("{e}: {r:?}"))?;
    let states: Vec<String> = json["scripts"]
        .as_array()
        .ok_or("no scripts")?
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["version"].as_str().unwrap(),
                s["kind"].as_str().unwrap(),
                s["state"].as_str().unwrap()
            )
        })
        .collect();
    ensure!(
        states
            == [
                "1.0.0 sql pending",
                "1.0.1 code pending",
                "1.0.2 sql pending",
                "1.1.0 sql above_app_version"
            ],
        "{states:?}"
    );
    ensure!(json["application_version"] == "1.0.2", "{json}");

    // The dry run shows steps and SQL, and changes nothing.
    let r = run(&["plan"]);
    expect(
        &r,
        0,
        &[
            "(empty) -> 1.0.2: 3 step(s)",
            "1. up   1.0.0 create_items (sql)",
            "| CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL);",
            "2. up   1.0.1 seed_items (code)",
            "3. up   1.0.2 add_note (sql)",
        ],
    )?;
    // Looking, and refused input, create nothing: not even a SQLite file.
    let r = run(&["up", "--dry-run"]);
    expect(&r, 0, &["3 step(s)"])?;
    expect(
        &run(&["up", "--to", "junk"]),
        2,
        &["invalid value 'junk' for '--to <VERSION>': `junk` is not a semver version"],
    )?;
    expect(
        &run(&["baseline", "--version", "1.0"]),
        2,
        &["invalid value '1.0' for '--version <VERSION>'"],
    )?;
    if D::NAME == "sqlite" {
        ensure!(
            !Path::new(&url).exists(),
            "status, plan or a dry run created {url}"
        );
    }
    ensure!(
        tables().is_empty(),
        "plan changed the database: {:?}",
        tables()
    );

    // up: a line per step with its duration, then the summary.
    let r = run(&["up"]);
    expect(
        &r,
        0,
        &[
            "up   1.0.0 create_items (sql) ",
            "up   1.0.1 seed_items (code) ",
            "up   1.0.2 add_note (sql) ",
            "migrated (empty) -> 1.0.2 in 3 steps (",
        ],
    )?;
    ensure!(
        hist() == ["1.0.0:up", "1.0.1:up", "1.0.2:up"],
        "{:?}",
        hist()
    );
    expect(
        &run(&["status", "--check"]),
        0,
        &["up to date: nothing to run"],
    )?;
    expect(
        &run(&["up"]),
        0,
        &["database at 1.0.2, application at 1.0.2: nothing to do"],
    )?;

    // down: one step by default, then --steps, then --to.
    expect(
        &run(&["down"]),
        0,
        &[
            "down 1.0.2 add_note (sql)",
            "migrated 1.0.2 -> 1.0.1 in 1 step",
        ],
    )?;
    let r = run(&["down", "--steps", "2"]);
    expect(
        &r,
        0,
        &[
            "down 1.0.1 seed_items (code)",
            "down 1.0.0 create_items (sql)",
            "-> (empty) in 2 steps",
        ],
    )?;
    ensure!(
        tables() == ["migrate_history", "migrate_history_state"],
        "{:?}",
        tables()
    );
    expect(
        &run(&["up", "--to", "1.0.1"]),
        0,
        &["migrated (empty) -> 1.0.1 in 2 steps"],
    )?;
    ensure!(
        D::strings(&mut db.connect(), "SELECT name AS s FROM items") == ["first"],
        "1.0.1 seeds a row"
    );

    // redo: down and up of the latest script.
    let r = run(&["redo"]);
    expect(
        &r,
        0,
        &[
            "down 1.0.1 seed_items (code)",
            "up   1.0.1 seed_items (code)",
        ],
    )?;
    let h = hist();
    ensure!(
        h[h.len() - 2..] == ["1.0.1:down", "1.0.1:up"],
        "redo history {h:?}"
    );
    expect(
        &run(&["down", "--to", "1.0.0"]),
        0,
        &["migrated 1.0.1 -> 1.0.0 in 1 step"],
    )?;

    // plan --to a later version, then apply it with --app-version.
    let r = run(&["plan", "--to", "1.1.0"]);
    expect(
        &r,
        0,
        &[
            "up   1.0.1",
            "up   1.0.2",
            "up   1.1.0 create_tags (sql)",
            "| CREATE TABLE tags (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL);",
        ],
    )?;
    expect(
        &run(&["--app-version", "1.1.0", "up"]),
        0,
        &["migrated 1.0.0 -> 1.1.0 in 3 steps"],
    )?;

    // Back at application 1.0.2, the database is ahead: --check tells it
    // apart from work to do (code 4), start-up's plan is empty and names
    // what it leaves in place, and `plan --to` shows the downgrade.
    expect(
        &run(&["status", "--check"]),
        4,
        &[
            "1.1.0          create_tags                  sql   ",
            "applied, ahead of the application",
            "the database is ahead: 1 script(s) applied above the application version 1.0.2 (the Cargo package version); start-up leaves them in place",
            "nothing to run: the database is ahead of the application version 1.0.2",
        ],
    )?;
    let r = run(&["status", "--check", "--json"]);
    ensure!(r.code == 4, "{r:?}");
    let json: serde_json::Value =
        serde_json::from_str(&r.stdout).map_err(|e| format!("{e}: {r:?}"))?;
    ensure!(
        json["ahead"][0] == "1.1.0 `create_tags`" && json["pending_steps"] == 0,
        "{json}"
    );
    expect(
        &run(&["plan"]),
        0,
        &[
            "nothing to do: the database is at 1.1.0, ahead of the target; left in place: 1.1.0 `create_tags`",
        ],
    )?;
    let r = run(&["plan", "--to", "1.0.2", "--json"]);
    let json: serde_json::Value =
        serde_json::from_str(&r.stdout).map_err(|e| format!("{e}: {r:?}"))?;
    ensure!(
        json["steps"][0]["direction"] == "down" && json["steps"][0]["sql"] == "DROP TABLE tags;\n",
        "{json}"
    );
    // `up` never downgrades.
    expect(&run(&["up"]), 0, &["nothing to do"])?;
    ensure!(
        hist().last().map(String::as_str) == Some("1.1.0:up"),
        "{:?}",
        hist()
    );

    // A step left in progress (as a crash outside a transaction leaves it):
    // runs refuse, status explains, resolve records the outcome.
    expect(
        &run(&["down", "--to", "1.0.1"]),
        0,
        &["migrated 1.1.0 -> 1.0.1 in 2 steps"],
    )?;
    let next = hist().len() + 1;
    db.connect()
        .batch_execute(&format!(
            "INSERT INTO migrate_history ({}, version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty)
             VALUES ({next}, '1.0.2', 'add_note', '', 'sql', 'up', TRUE, '2026-11-22 00:00:00', 0, NULL, TRUE)",
            D::CHANGE
        ))
        .unwrap();
    expect(
        &run(&["up"]),
        1,
        &[
            "error: migration 1.0.2 `add_note` (up) started in change",
            "resolve --version 1.0.2 --completed",
        ],
    )?;
    expect(
        &run(&["status"]),
        0,
        &["IN PROGRESS (dirty)", "--rolled-back"],
    )?;
    expect(
        &run(&["resolve", "--version", "1.0.1", "--completed"]),
        1,
        &[
            "nothing to resolve for 1.0.1 in `migrate_history`: the step in progress is 1.0.2 `add_note`",
        ],
    )?;
    expect(
        &run(&["resolve", "--version", "1.0.2"]),
        2,
        &["--completed"],
    )?;
    expect(
        &run(&["resolve", "--version", "1.0.2", "--rolled-back"]),
        0,
        &[
            "resolved 1.0.2 `add_note` (up, change",
            "the attempt is forgotten",
        ],
    )?;
    expect(
        &run(&["up"]),
        0,
        &[
            "up   1.0.2 add_note (sql)",
            "migrated 1.0.1 -> 1.0.2 in 1 step",
        ],
    )?;
    Ok(())
}

/// baseline records without running, and only on an untouched database.
fn baseline_records_an_existing_database_without_running_anything<D: TestDb>() -> Result<(), String>
{
    let Some((db, dir)) = fresh::<D>()? else {
        return Ok(());
    };
    let url = db.url();
    let run = |args: &[&str]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        cli(D::NAME, dir.path(), &all, &[])
    };
    // The live database already has 1.0.0's table, made by hand.
    db.connect()
        .batch_execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .unwrap();
    let r = run(&["baseline", "--version", "1.0.1"]);
    expect(
        &r,
        0,
        &[
            "up   1.0.0 create_items (sql) ",
            "(recorded as applied, not run)",
            "baseline recorded: the database is at 1.0.1 (2 script(s) marked as applied, none run)",
        ],
    )?;
    let mut conn = db.connect();
    let executed = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, ':', CASE WHEN executed THEN 'ran' ELSE 'recorded' END) AS s FROM migrate_history ORDER BY {}",
            D::CHANGE
        ),
    );
    ensure!(
        executed == ["1.0.0:recorded", "1.0.1:recorded"],
        "{executed:?}"
    );
    ensure!(
        D::strings(&mut conn, "SELECT name AS s FROM items").is_empty(),
        "the seed script ran during baseline"
    );
    expect(
        &run(&["up"]),
        0,
        &[
            "up   1.0.2 add_note (sql)",
            "migrated 1.0.1 -> 1.0.2 in 1 step",
        ],
    )?;
    let r = run(&["baseline", "--version", "1.0.2"]);
    expect(
        &r,
        1,
        &[
            "error: baseline refused on `migrate_history`, nothing was recorded: it already holds 3 row(s)",
        ],
    )?;
    let r = run(&["baseline", "--version", "0.0.1"]);
    expect(
        &r,
        1,
        &["no script known to this build is at or below 0.0.1"],
    )?;
    let r = run(&["baseline", "--version", "1.0"]);
    expect(
        &r,
        2,
        &["error: invalid value '1.0' for '--version <VERSION>': `1.0` is not a semver version"],
    )?;
    Ok(())
}

/// create: SQL folders and Rust files, the next version, refusals.
fn create_writes_migrations_at_the_next_version_and_refuses_taken_ones() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cli("sqlite", dir.path(), args, &[]);
    // The app is at 1.0.2 and 1.1.0 is compiled in: a new migration goes
    // above it, as the first of release 1.1.1 (1.1.1-1), and says that it
    // does not run at 1.0.2.
    let r = run(&["create", "add email"]);
    expect(
        &r,
        0,
        &[
            "created migrations/1.1.1-1_add_email/up.sql",
            "created migrations/1.1.1-1_add_email/down.sql",
            "next: write the migration in up.sql",
            "note: 1.1.1-1 is above the application version 1.0.2",
        ],
    )?;
    let up =
        std::fs::read_to_string(dir.path().join("migrations/1.1.1-1_add_email/up.sql")).unwrap();
    ensure!(up.starts_with("-- Migration 1.1.1-1 `add_email`"), "{up}");
    // The folder on disk counts even before a build embeds it.
    expect(
        &run(&["create", "second"]),
        0,
        &["created migrations/1.1.1-2_second/up.sql"],
    )?;
    let r = run(&["create", "--rust", "backfill-names"]);
    expect(
        &r,
        0,
        &[
            "created src/migrations/v1_1_1_3_backfill_names.rs",
            "add `mod v1_1_1_3_backfill_names;`",
        ],
    )?;
    let text =
        std::fs::read_to_string(dir.path().join("src/migrations/v1_1_1_3_backfill_names.rs"))
            .unwrap();
    ensure!(
        text.contains("#[migration_script(version = \"1.1.1-3\", name = \"backfill_names\")]\npub struct BackfillNames;")
            && text.contains("use migrate::diesel::SqliteConnection;"),
        "{text}"
    );
    expect(&run(&["create", "next"]), 0, &["1.1.1-4_next"])?;
    // At the application version of that release, the next one runs there.
    expect(
        &cli(
            "sqlite",
            dir.path(),
            &["--app-version", "1.1.1", "create", "fifth"],
            &[],
        ),
        0,
        &[
            "created migrations/1.1.1-5_fifth/up.sql",
            "note: 1.1.1-5 is migration 5 of release 1.1.1, the application version (the configured application version): it runs at 1.1.1 and sorts below it",
        ],
    )?;

    // Taken versions: compiled in (code and SQL), or on disk.
    expect(
        &run(&["create", "x", "--version", "1.0.1"]),
        1,
        &["error: version 1.0.1 already exists: `seed_items` (tests/cli.rs:"],
    )?;
    expect(
        &run(&["create", "x", "--version", "1.1.0"]),
        1,
        &["error: version 1.1.0 already exists: `create_tags`"],
    )?;
    expect(
        &run(&["create", "x", "--version", "1.1.1-1+b"]),
        1,
        &["error: version 1.1.1-1+b already exists: migrations/1.1.1-1_add_email"],
    )?;
    expect(
        &run(&["create", "x", "--version", "1.1.1-3"]),
        1,
        &["already exists: src/migrations/v1_1_1_3_backfill_names.rs"],
    )?;
    expect(
        &run(&["create", "x", "--version", "v2"]),
        2,
        &["invalid value 'v2' for '--version <VERSION>': `v2` is not a semver version"],
    )?;
    expect(
        &run(&["create", "drop;table"]),
        1,
        &["is not a usable migration name"],
    )?;
    expect(
        &run(&["create", "z", "--version", "3.0.0", "--dir", "elsewhere"]),
        0,
        &["created elsewhere/3.0.0_z/up.sql"],
    )?;

    // The Rust template compiles: this exact text is built as
    // tests/fixtures/created/v9_9_9_sample.rs by tests/created_script.rs.
    let r = run(&["create", "--rust", "sample", "--version", "9.9.9"]);
    expect(&r, 0, &[])?;
    let made = std::fs::read_to_string(dir.path().join("src/migrations/v9_9_9_sample.rs")).unwrap();
    let fixture = include_str!("fixtures/created/v9_9_9_sample.rs");
    ensure!(
        made == fixture,
        "the template changed; update the fixture:\n{made}"
    );
    Ok(())
}

/// From `src/` of a project, the project's migrate.toml is found, and its
/// relative SQLite path means the file beside it, not one in `src/`.
fn the_configuration_is_found_from_a_subdirectory_of_the_project() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"blog\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("migrate.toml"),
        "[dev]\nurl = \"sqlite://dev.db\"\n",
    )
    .unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    expect(
        &cli("sqlite", &src, &["up"], &[]),
        0,
        &["migrated (empty) -> 1.0.2 in 3 steps"],
    )?;
    ensure!(
        dir.path().join("dev.db").exists(),
        "the project's dev.db was not used"
    );
    ensure!(!src.join("dev.db").exists(), "a dev.db was made in src/");
    expect(
        &cli("sqlite", &src, &["status"], &[]),
        0,
        &[
            "database sqlite://../dev.db (environment `dev`)",
            "database 1.0.2",
        ],
    )?;
    Ok(())
}

/// migrate.toml: environments, MIGRATE_ENV, variables, settings.
fn migrate_toml_selects_environments_and_interpolates_variables() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("migrate.toml"),
        r#"
[dev]
url = "dev.db"

[test]
driver = "sqlite"
database = { env = "TEST_DB_FILE" }
table = "schema_history"
app_version = "1.0.1"
"#,
    )
    .unwrap();
    let run = |args: &[&str], vars: &[(&str, &str)]| cli("sqlite", dir.path(), args, vars);
    expect(
        &run(&["up"], &[]),
        0,
        &["migrated (empty) -> 1.0.2 in 3 steps"],
    )?;
    ensure!(dir.path().join("dev.db").exists(), "dev.db was not used");

    let vars = [("TEST_DB_FILE", "from-variable.db")];
    expect(
        &run(&["--env", "test", "up"], &vars),
        0,
        &["migrated (empty) -> 1.0.1 in 2 steps"],
    )?;
    expect(
        &run(&["status"], &[("MIGRATE_ENV", "test"), vars[0]]),
        0,
        &[
            "database from-variable.db (environment `test`)",
            "application 1.0.1 (the configured application version), database 1.0.1",
        ],
    )?;
    let mut conn =
        support::Sqlite::at(&dir.path().join("from-variable.db").to_string_lossy()).connect();
    ensure!(
        support::Sqlite::tables(&mut conn).contains(&"schema_history".to_owned()),
        "the environment's table setting was not used"
    );
    // --env wins over MIGRATE_ENV, and --table over the file.
    expect(
        &run(&["--env", "dev", "status"], &[("MIGRATE_ENV", "test")]),
        0,
        &["environment `dev`"],
    )?;
    expect(
        &run(
            &["--env", "test", "--table", "other_history", "status"],
            &vars,
        ),
        0,
        &["database (empty)"],
    )?;
    // An explicit URL wins over the file.
    expect(
        &run(&["status"], &[("DATABASE_URL", "override.db")]),
        0,
        &["database override.db (environment `dev`)"],
    )?;
    Ok(())
}

/// db-migrate's database.json, unchanged.
fn database_json_works_as_db_migrate_wrote_it() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("database.json"),
        r#"{
  "defaultEnv": {"ENV": "NODE_ENV"},
  "dev": { "driver": "sqlite3", "filename": "dev.db" },
  "staging": { "driver": "sqlite3", "filename": {"ENV": "STAGING_FILE"}, "verbose": true },
  "prod": {"ENV": "PROD_DATABASE"}
}"#,
    )
    .unwrap();
    let run = |args: &[&str], vars: &[(&str, &str)]| cli("sqlite", dir.path(), args, vars);
    // The default environment's variable unset: `dev`, as db-migrate does.
    expect(&run(&["up"], &[]), 0, &["migrated (empty) -> 1.0.2"])?;
    expect(
        &run(&["up"], &[("NODE_ENV", "dev")]),
        0,
        &["database at 1.0.2"],
    )?;
    ensure!(dir.path().join("dev.db").exists(), "dev.db was not used");
    expect(
        &run(
            &["up"],
            &[("NODE_ENV", "staging"), ("STAGING_FILE", "staging.db")],
        ),
        0,
        &["migrated (empty) -> 1.0.2"],
    )?;
    ensure!(
        dir.path().join("staging.db").exists(),
        "staging.db was not used"
    );
    expect(
        &run(
            &["--env", "prod", "status"],
            &[("PROD_DATABASE", "prod.db")],
        ),
        0,
        &["database prod.db (environment `prod`)"],
    )?;
    Ok(())
}

/// Each bad configuration: exit 1, the file, environment and key named,
/// and nothing created.
fn bad_configuration_fails_naming_file_environment_and_key() -> Result<(), String> {
    /// File name, its text, arguments, variables, the expected message.
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a str,
    );
    let cases: &[Case<'_>] = &[
        (
            "migrate.toml",
            "[dev]\nurl = \"dev.db\"\n",
            &["--env", "prod", "up"],
            &[],
            "migrate.toml: no environment `prod`; the file defines `dev`; choose one with --env or MIGRATE_ENV",
        ),
        (
            "migrate.toml",
            "[dev]\nurl = { env = \"NOT_SET_ANYWHERE\" }\n",
            &["up"],
            &[],
            "migrate.toml, environment `dev`, key `url`: the variable `NOT_SET_ANYWHERE` is not set",
        ),
        (
            "database.json",
            r#"{"dev": {"driver": "oracle", "database": "x"}}"#,
            &["up"],
            &[],
            "database.json, environment `dev`, key `driver`: unknown driver `oracle`; expected one of sqlite",
        ),
        (
            "migrate.toml",
            "[dev\nurl = \"dev.db\"\n",
            &["up"],
            &[],
            "migrate.toml is malformed: ",
        ),
        (
            "database.json",
            "{\"dev\": {\"driver\": \"sqlite3\" \"filename\": \"dev.db\"}}",
            &["up"],
            &[],
            "database.json is malformed: expected `,` or `}` at line 1 column 30",
        ),
        (
            "migrate.toml",
            "[dev]\nurl = \"dev.db\"\nlock_timeout = \"soon\"\n",
            &["up"],
            &[],
            "migrate.toml, environment `dev`, key `lock_timeout`: expected a whole number of seconds",
        ),
        (
            "migrate.toml",
            "[dev]\nurl = \"dev.db\"\n",
            &["up"],
            &[("MIGRATE_ENV", "dev'; DROP TABLE x; --")],
            "`dev'; DROP TABLE x; --` is not a valid environment name",
        ),
        (
            "migrate.toml",
            "[dev]\nurl = \"dev.db\"\n",
            &["--table", "x\"; DROP TABLE items; --", "up"],
            &[],
            "is not a valid table name",
        ),
        (
            "migrate.toml",
            "[dev]\nurl = \"dev.db\"\n",
            &["--app-version", "1.0", "up"],
            &[],
            "error: app_version=`1.0` is not a semver version",
        ),
        (
            "migrate.toml",
            "[dev]\nurl = \"dev.db\"\n",
            &["up"],
            &[("APPLICATION_VERSION", "v1.0.2")],
            "APPLICATION_VERSION=`v1.0.2` is not a semver version",
        ),
    ];
    #[cfg(not(feature = "postgres"))]
    let cases = &[
        cases,
        &[(
            "database.json",
            r#"{"dev": {"driver": "pg", "host": "localhost", "database": "shop"}}"#,
            &["up"][..],
            &[][..],
            "database.json, environment `dev`: driver `postgres` is not built into this binary; build it with the `postgres` feature of `migrate`",
        )][..],
    ]
    .concat()[..];
    #[cfg(not(feature = "mysql"))]
    let cases = &[
        cases,
        &[(
            "database.json",
            r#"{"dev": {"driver": "mysql", "host": "localhost", "database": "shop"}}"#,
            &["up"][..],
            &[][..],
            "database.json, environment `dev`: driver `mysql` is not built into this binary; build it with the `mysql` feature of `migrate`",
        )][..],
    ]
    .concat()[..];
    #[cfg(all(feature = "postgres", feature = "mysql"))]
    println!(
        "note: every driver is built in, so the \"driver not built\" cases cannot run here; scripts/test runs them in a default-feature build"
    );
    for (file, text, args, vars, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), text).unwrap();
        let r = cli("sqlite", dir.path(), args, vars);
        ensure!(r.code == 1, "{file} {text:?}: expected exit 1, got {r:?}");
        ensure!(
            r.stderr.contains(message),
            "{file} {text:?}: expected {message:?} in {r:?}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        ensure!(
            left.len() == 1,
            "{file} {text:?}: files were created: {left:?}"
        );
    }
    // No configuration at all.
    let dir = tempfile::tempdir().unwrap();
    expect(
        &cli("sqlite", dir.path(), &["status"], &[]),
        1,
        &[
            "error: no database configured: pass --database-url, set DATABASE_URL, or write migrate.toml",
        ],
    )?;
    Ok(())
}

/// `.env` in the working directory (or a parent) is read, as diesel CLI
/// and sqlx-cli read it; a variable that is set wins over it.
fn a_dot_env_file_is_read_and_a_set_variable_wins() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("src");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# the database of this checkout\nDATABASE_URL=from-dot-env.db\n",
    )
    .unwrap();
    expect(
        &cli("sqlite", &nested, &["status"], &[]),
        0,
        &["database from-dot-env.db"],
    )?;
    expect(
        &cli(
            "sqlite",
            &nested,
            &["status"],
            &[("DATABASE_URL", "from-variable.db")],
        ),
        0,
        &["database from-variable.db"],
    )?;
    // A line that is not `KEY=value` is an error naming the file.
    std::fs::write(dir.path().join(".env"), "DATABASE_URL\n").unwrap();
    expect(
        &cli("sqlite", &nested, &["status"], &[]),
        1,
        &["cannot read .env"],
    )?;
    Ok(())
}

/// `create` run from inside the package (here `src/`) writes where
/// `embed_sql!` looks: beside the package's Cargo.toml.
fn create_writes_beside_cargo_toml_from_any_directory_of_the_package() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let r = cli("sqlite", &src, &["create", "add_users"], &[]);
    expect(&r, 0, &["created ../migrations/"])?;
    let made: Vec<_> = std::fs::read_dir(dir.path().join("migrations"))
        .map_err(|e| format!("no migrations/ beside Cargo.toml: {e}"))?
        .collect();
    ensure!(made.len() == 1, "{made:?}");
    ensure!(!src.join("migrations").exists(), "created under src/");
    Ok(())
}

/// --help of every subcommand has examples; usage errors exit 2.
fn every_subcommand_has_help_with_examples() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    for sub in [
        "status", "plan", "up", "down", "redo", "baseline", "create", "resolve",
    ] {
        let r = cli("sqlite", dir.path(), &[sub, "--help"], &[]);
        expect(&r, 0, &["Examples:", &format!(" {sub}")])?;
    }
    expect(
        &cli("sqlite", dir.path(), &["--help"], &[]),
        0,
        &["Examples:", "status --check"],
    )?;
    expect(
        &cli("sqlite", dir.path(), &["upp"], &[]),
        2,
        &["unrecognized subcommand 'upp'"],
    )?;
    expect(
        &cli(
            "sqlite",
            dir.path(),
            &["down", "--steps", "2", "--to", "1.0.0"],
            &[],
        ),
        2,
        &["cannot be used with"],
    )?;
    // A bad value is a usage error too, named by the parser.
    expect(
        &cli("sqlite", dir.path(), &["down", "--to", "abc"], &[]),
        2,
        &["invalid value 'abc' for '--to <VERSION>'"],
    )?;
    Ok(())
}

/// A subcommand's help lists the global flags it takes, and only those.
fn each_subcommand_lists_and_takes_only_its_flags() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let help = |sub: &str| cli("sqlite", dir.path(), &[sub, "--help"], &[]).stdout;
    let create = help("create");
    for flag in [
        "--env",
        "--config",
        "--database-url",
        "--app-version",
        "--verbose",
    ] {
        ensure!(
            create.contains(flag),
            "create --help lacks {flag}:\n{create}"
        );
    }
    for flag in [
        "--atomic",
        "--lock-timeout",
        "--table",
        "--allow-out-of-order",
    ] {
        ensure!(
            !create.contains(flag),
            "create --help lists {flag}:\n{create}"
        );
    }
    let up = help("up");
    for flag in ["--atomic", "--app-version", "--lock-timeout", "--table"] {
        ensure!(up.contains(flag), "up --help lacks {flag}:\n{up}");
    }
    let status = help("status");
    ensure!(
        status.contains("--app-version") && !status.contains("--atomic"),
        "{status}"
    );
    let baseline = help("baseline");
    ensure!(
        baseline.contains("--lock-timeout") && !baseline.contains("--app-version"),
        "{baseline}"
    );
    // Given anyway, it means nothing there: a wrapper script may pass the
    // same flags to every command.
    expect(
        &cli(
            "sqlite",
            dir.path(),
            &["--atomic", "create", "x", "--lock-timeout", "5"],
            &[],
        ),
        0,
        &["created migrations/"],
    )?;
    Ok(())
}

/// A failed step: exit 1, the script and version named, the steps before it
/// kept.
fn a_failing_step_exits_non_zero_naming_the_script<D: TestDb>() -> Result<(), String> {
    let Some((db, dir)) = fresh::<D>()? else {
        return Ok(());
    };
    let url = db.url();
    // 1.0.2 adds a column that already exists.
    db.connect()
        .batch_execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT)")
        .unwrap();
    let r = cli(
        D::NAME,
        dir.path(),
        &["--database-url", &url, "baseline", "--version", "1.0.0"],
        &[],
    );
    expect(&r, 0, &[])?;
    let r = cli(D::NAME, dir.path(), &["--database-url", &url, "up"], &[]);
    // Where DDL commits implicitly (MySQL), the failed ALTER may have
    // changed something: the step stays marked in progress instead.
    let consequence = if D::Conn::TRANSACTIONAL_DDL {
        "the steps before it are applied"
    } else {
        "a statement in it committed implicitly (as DDL does on this database), so it may be HALF-APPLIED"
    };
    expect(
        &r,
        1,
        &[
            "up   1.0.1 seed_items (code) ",
            "error: migration 1.0.2 `add_note` (up) failed: ",
            consequence,
        ],
    )?;
    let hist = history::<D>(&mut db.connect(), "migrate_history");
    if D::Conn::TRANSACTIONAL_DDL {
        ensure!(hist == ["1.0.0:up", "1.0.1:up"], "history {hist:?}");
    } else {
        ensure!(
            hist == ["1.0.0:up", "1.0.1:up", "1.0.2:up"],
            "history {hist:?}"
        );
        let r = cli(
            D::NAME,
            dir.path(),
            &["--database-url", &url, "status"],
            &[],
        );
        expect(
            &r,
            0,
            &[
                "IN PROGRESS (dirty)",
                "resolve --version 1.0.2 --rolled-back",
            ],
        )?;
        let r = cli(D::NAME, dir.path(), &["--database-url", &url, "up"], &[]);
        expect(
            &r,
            1,
            &["migration 1.0.2 `add_note` (up) started in change"],
        )?;
        let r = cli(
            D::NAME,
            dir.path(),
            &[
                "--database-url",
                &url,
                "resolve",
                "--version",
                "1.0.2",
                "--rolled-back",
            ],
            &[],
        );
        expect(&r, 0, &[])?;
        let hist = history::<D>(&mut db.connect(), "migrate_history");
        ensure!(hist == ["1.0.0:up", "1.0.1:up"], "history {hist:?}");
    }
    Ok(())
}

/// A database server: how its URLs and `database.json` name it, and a user
/// with a password.
#[cfg(any(feature = "postgres", feature = "mysql"))]
trait Server: TestDb {
    /// The URL scheme.
    const SCHEME: &'static str;
    /// db-migrate's driver name in `database.json`.
    const JSON_DRIVER: &'static str;
    /// A user that logs in with `password` and owns the test database.
    fn user_with_password(&self, password: &str) -> String;
}

#[cfg(feature = "postgres")]
impl Server for support::Postgres {
    const SCHEME: &'static str = "postgres";
    const JSON_DRIVER: &'static str = "pg";
    /// The test server trusts local connections: any password is accepted.
    fn user_with_password(&self, _password: &str) -> String {
        let rest = self.url.split_once("://").unwrap().1;
        rest.split_once('@').unwrap().0.to_owned()
    }
}

#[cfg(feature = "mysql")]
impl Server for support::Mysql {
    const SCHEME: &'static str = "mysql";
    const JSON_DRIVER: &'static str = "mysql";
    /// A new user, identified by `password`, granted the test database.
    fn user_with_password(&self, password: &str) -> String {
        use diesel::RunQueryDsl;
        let database = self.url.rsplit_once('/').unwrap().1;
        let user = format!("u{}", &database[database.len() - 12..]);
        let mut conn = self.connect();
        // Every host form a TCP client from this machine may match (an
        // anonymous `''@localhost` would otherwise win).
        for host in ["%", "localhost", "127.0.0.1"] {
            diesel::sql_query(format!(
                "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"
            ))
            .execute(&mut conn)
            .unwrap();
            diesel::sql_query(format!("GRANT ALL ON {database}.* TO '{user}'@'{host}'"))
                .execute(&mut conn)
                .unwrap();
        }
        user
    }
}

/// The password never appears, with every log on, on success and failure.
/// It comes through `database.json` (the server's own driver name, the
/// URL in parts) and through a raw `--database-url`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn passwords_never_appear_in_any_output<D: Server>() -> Result<(), String> {
    let Some((db, dir)) = fresh::<D>()? else {
        return Ok(());
    };
    // Characters a URL must percent-encode, to prove masking does not rely
    // on finding the password's text.
    const SECRET: &str = "Pw-7#s3cr/et";
    const ENCODED: &str = "Pw-7%23s3cr%2Fet";
    let user = db.user_with_password(SECRET);
    // scheme://user@host:port/name from the test server.
    let url = db.url();
    let rest = url.split_once('@').ok_or("a user")?.1;
    let (hostport, database) = rest.split_once('/').ok_or("a database")?;
    let (host, port) = hostport.split_once(':').ok_or("a port")?;
    let (scheme, driver) = (D::SCHEME, D::JSON_DRIVER);
    std::fs::write(
        dir.path().join("database.json"),
        format!(
            r#"{{"dev": {{"driver": "{driver}", "host": "{host}", "port": {{"ENV": "PORT_FOR_TEST"}}, "user": "{user}", "password": {{"ENV": "DB_PASSWORD"}}, "database": "{database}"}},
               "down": {{"driver": "{driver}", "host": "127.0.0.1", "port": 1, "user": "x", "password": "{SECRET}", "database": "d"}}}}"#
        ),
    )
    .unwrap();
    let vars = [
        ("PORT_FOR_TEST", port),
        ("DB_PASSWORD", SECRET),
        ("RUST_LOG", "trace"),
    ];
    let mut outputs = Vec::new();
    for args in [
        &["-vv", "status"][..],
        &["plan"],
        &["up"],
        &["status", "--json"],
        &["down", "--steps", "2"],
        &["redo"],
        &["--env", "down", "status"],
        // Raw, drivers would read the password differently: refused.
        &[
            "--database-url",
            &format!("{scheme}://{user}:{SECRET}@127.0.0.1:1/d"),
            "up",
        ],
        // Percent-encoded, as a URL must hold it.
        &[
            "--database-url",
            &format!("{scheme}://{user}:{ENCODED}@{hostport}/no_such_db"),
            "up",
        ],
    ] {
        let r = cli(D::NAME, dir.path(), args, &vars);
        outputs.push((args.join(" "), r));
    }
    for ((args, r), code) in outputs.iter().zip([0, 0, 0, 0, 0, 0, 1, 1, 1]) {
        ensure!(r.code == code, "`{args}`: expected exit {code}: {r:?}");
        ensure!(
            !r.all().contains(SECRET) && !r.all().contains(ENCODED),
            "`{args}` printed the password: {r:?}"
        );
    }
    expect(
        &outputs[0].1,
        0,
        &[&format!("database {scheme}://{user}:***@")],
    )?;
    expect(&outputs[2].1, 0, &["migrated (empty) -> 1.0.2 in 3 steps"])?;
    ensure!(
        outputs[0].1.stderr.contains("DEBUG"),
        "no logs were produced: {:?}",
        outputs[0].1
    );
    expect(
        &outputs[6].1,
        1,
        &[&format!(
            "error: cannot connect to {scheme}://x:***@127.0.0.1:1/d"
        )],
    )?;
    expect(
        &outputs[7].1,
        1,
        &[&format!("the URL `{scheme}://***` is ambiguous")],
    )?;
    expect(
        &outputs[8].1,
        1,
        &[
            &format!("error: cannot connect to {scheme}://{user}:***@"),
            "no_such_db",
        ],
    )?;
    // History rows hold no secrets either.
    let rows = D::strings(
        &mut db.connect(),
        "SELECT CONCAT(version, name, description, kind, applied_at, COALESCE(checksum, '')) AS s FROM migrate_history",
    );
    ensure!(
        !rows.is_empty() && rows.iter().all(|r| !r.contains(SECRET)),
        "{rows:?}"
    );
    Ok(())
}

/// Secrets are masked by the connection string's structure, in every form
/// libpq reads: keywords with spaces around `=`, a quoted password with
/// spaces, `sslpassword` in a URL's query. And masking mangles nothing
/// else: a password `postgres` leaves the scheme and the user alone, a
/// password `s` every word that holds an `s`.
#[cfg(feature = "postgres")]
fn secrets_are_masked_by_structure_in_every_connection_string_form() -> Result<(), String> {
    let Some((db, dir)) = fresh::<support::Postgres>()? else {
        return Ok(());
    };
    let url = db.url();
    let rest = url.split_once('@').ok_or("a user")?.1;
    let (hostport, database) = rest.split_once('/').ok_or("a database")?;
    let (host, port) = hostport.split_once(':').ok_or("a port")?;
    let keywords = |password: &str| {
        format!("host={host} port={port} user=postgres password {password} dbname={database}")
    };
    std::fs::write(
        dir.path().join("migrate.toml"),
        format!(
            "[spaces]\ndriver = \"pg\"\nurl = \"{}\"\n\n[quoted]\ndriver = \"pg\"\nurl = \"{}\"\n",
            keywords("= Hunter2Secret"),
            keywords("='Hunter2 Secret Words'")
        ),
    )
    .unwrap();
    let trace = [("RUST_LOG", "trace")];
    let shown_keywords =
        format!("host={host} port={port} user=postgres password=*** dbname={database}");
    for env in ["spaces", "quoted"] {
        let r = cli("postgres", dir.path(), &["--env", env, "status"], &trace);
        expect(
            &r,
            0,
            &[
                &format!("database {shown_keywords} (environment `{env}`)"),
                "configuration loaded",
            ],
        )?;
        ensure!(
            !r.all().contains("Hunter2") && !r.all().contains("Secret Words"),
            "`{env}`: {r:?}"
        );
    }
    // Refused before connecting (the driver cannot be told), still masked.
    let r = cli(
        "postgres",
        dir.path(),
        &["--database-url", &keywords("= Hunter2Secret"), "status"],
        &trace,
    );
    expect(
        &r,
        1,
        &[&format!(
            "cannot tell the driver from the URL `{shown_keywords}`"
        )],
    )?;
    ensure!(!r.all().contains("Hunter2"), "{r:?}");
    // sslpassword in a URL's query.
    let r = cli(
        "postgres",
        dir.path(),
        &[
            "--database-url",
            &format!(
                "postgres://postgres@{hostport}/{database}?sslmode=disable&sslpassword=SslSecret9"
            ),
            "status",
        ],
        &trace,
    );
    expect(
        &r,
        0,
        &[&format!(
            "database postgres://postgres@{hostport}/{database}?sslmode=disable&sslpassword=*** "
        )],
    )?;
    ensure!(!r.all().contains("SslSecret9"), "{r:?}");
    // Passwords that are words of the output.
    for password in ["postgres", "s"] {
        let url = format!("postgres://postgres:{password}@{hostport}/{database}");
        let r = cli(
            "postgres",
            dir.path(),
            &["--database-url", &url, "status"],
            &trace,
        );
        expect(
            &r,
            0,
            &[&format!(
                "database postgres://postgres:***@{hostport}/{database} "
            )],
        )?;
        ensure!(
            !r.all().contains("***://")
                && !r.all().contains("po***")
                && !r.all().contains("***tatu"),
            "`{password}` mangled the output: {r:?}"
        );
    }
    Ok(())
}

/// `mariadb://` URLs and `database.json`'s `"driver": "mariadb"` reach the
/// MySQL backend, which diesel only knows as `mysql://`.
#[cfg(feature = "mysql")]
fn mariadb_urls_and_driver_names_work() -> Result<(), String> {
    let Some((db, dir)) = fresh::<support::Mysql>()? else {
        return Ok(());
    };
    let mariadb = db.url.replacen("mysql://", "mariadb://", 1);
    let r = cli(
        "mysql",
        dir.path(),
        &["--database-url", &mariadb, "up"],
        &[],
    );
    expect(&r, 0, &["migrated (empty) -> 1.0.2 in 3 steps"])?;
    let rest = db.url.split_once('@').ok_or("a user")?.1;
    let (hostport, database) = rest.split_once('/').ok_or("a database")?;
    let (host, port) = hostport.split_once(':').ok_or("a port")?;
    std::fs::write(
        dir.path().join("database.json"),
        format!(
            r#"{{"dev": {{"driver": "mariadb", "host": "{host}", "port": {port}, "user": "root", "database": "{database}"}}}}"#
        ),
    )
    .unwrap();
    let r = cli("mysql", dir.path(), &["status", "--check"], &[]);
    expect(&r, 0, &["1.0.2", "applied"])?;
    Ok(())
}

/// `verify` runs every script's down and up again on a fresh database, and
/// refuses a migrated one.
fn verify_checks_every_down_from_the_command_line() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let r = cli(
        "sqlite",
        dir.path(),
        &["--database-url", ":memory:", "verify"],
        &[],
    );
    expect(
        &r,
        0,
        &[
            "reversibility check of 4 script(s):",
            "1.0.0 `create_items`: reversible",
            "1.0.1 `seed_items`: reversible",
            "1.0.2 `add_note`: reversible",
            "1.1.0 `create_tags`: reversible",
        ],
    )?;
    let db = dir.path().join("app.db");
    let db = db.to_str().unwrap();
    expect(
        &cli("sqlite", dir.path(), &["--database-url", db, "up"], &[]),
        0,
        &[],
    )?;
    let r = cli("sqlite", dir.path(), &["--database-url", db, "verify"], &[]);
    expect(&r, 1, &["the reversibility check needs a fresh database"])?;
    Ok(())
}

/// `adopt-diesel` on a database that diesel_migrations migrated: the
/// semver scripts then run on top, diesel's history untouched.
fn adopt_diesel_takes_a_diesel_history_as_the_base() -> Result<(), String> {
    use diesel_migrations::MigrationHarness;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let db = db.to_str().unwrap();
    let diesel_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diesel");
    let mut conn = <diesel::SqliteConnection as diesel::Connection>::establish(db).unwrap();
    conn.run_pending_migrations(
        diesel_migrations::FileBasedMigrations::from_path(&diesel_dir).unwrap(),
    )
    .unwrap();
    let r = cli(
        "sqlite",
        dir.path(),
        &[
            "--database-url",
            db,
            "adopt-diesel",
            "--dir",
            diesel_dir.to_str().unwrap(),
        ],
        &[],
    );
    expect(
        &r,
        0,
        &["adopted the diesel history: 2 migration(s), the last 20230601090000"],
    )?;
    // status says what lies below an empty history of ours.
    let r = cli("sqlite", dir.path(), &["--database-url", db, "status"], &[]);
    expect(
        &r,
        0,
        &[
            "database (empty)\nbelow it, diesel_migrations' history: 2 migration(s), the latest 20230601090000",
        ],
    )?;
    // The application's scripts create `items`, beside diesel's `users`.
    let r = cli("sqlite", dir.path(), &["--database-url", db, "up"], &[]);
    expect(&r, 0, &["migrated (empty) -> 1.0.2 in 3 steps"])?;
    let tables = support::Sqlite::tables(&mut conn);
    ensure!(
        tables.contains(&"users".to_owned()) && tables.contains(&"items".to_owned()),
        "{tables:?}"
    );
    Ok(())
}

fn main() -> ExitCode {
    match std::env::var("MIGRATE_CLI_CHILD").as_deref() {
        Ok("sqlite") => return child::<diesel::SqliteConnection>(),
        #[cfg(feature = "postgres")]
        Ok("postgres") => return child::<diesel::PgConnection>(),
        #[cfg(feature = "mysql")]
        Ok("mysql") => return child::<diesel::MysqlConnection>(),
        Ok(other) => panic!("unknown backend {other}"),
        Err(_) => {}
    }
    let mut tests: Vec<Test> = vec![
        (
            "sqlite::every_subcommand_walks_a_database_through_its_life",
            every_subcommand_walks_a_database_through_its_life::<support::Sqlite>,
        ),
        (
            "sqlite::baseline_records_an_existing_database_without_running_anything",
            baseline_records_an_existing_database_without_running_anything::<support::Sqlite>,
        ),
        (
            "sqlite::a_failing_step_exits_non_zero_naming_the_script",
            a_failing_step_exits_non_zero_naming_the_script::<support::Sqlite>,
        ),
        (
            "create_writes_migrations_at_the_next_version_and_refuses_taken_ones",
            create_writes_migrations_at_the_next_version_and_refuses_taken_ones,
        ),
        (
            "migrate_toml_selects_environments_and_interpolates_variables",
            migrate_toml_selects_environments_and_interpolates_variables,
        ),
        (
            "the_configuration_is_found_from_a_subdirectory_of_the_project",
            the_configuration_is_found_from_a_subdirectory_of_the_project,
        ),
        (
            "database_json_works_as_db_migrate_wrote_it",
            database_json_works_as_db_migrate_wrote_it,
        ),
        (
            "bad_configuration_fails_naming_file_environment_and_key",
            bad_configuration_fails_naming_file_environment_and_key,
        ),
        (
            "every_subcommand_has_help_with_examples",
            every_subcommand_has_help_with_examples,
        ),
        (
            "each_subcommand_lists_and_takes_only_its_flags",
            each_subcommand_lists_and_takes_only_its_flags,
        ),
        (
            "a_dot_env_file_is_read_and_a_set_variable_wins",
            a_dot_env_file_is_read_and_a_set_variable_wins,
        ),
        (
            "create_writes_beside_cargo_toml_from_any_directory_of_the_package",
            create_writes_beside_cargo_toml_from_any_directory_of_the_package,
        ),
        (
            "verify_checks_every_down_from_the_command_line",
            verify_checks_every_down_from_the_command_line,
        ),
        (
            "adopt_diesel_takes_a_diesel_history_as_the_base",
            adopt_diesel_takes_a_diesel_history_as_the_base,
        ),
    ];
    #[cfg(feature = "postgres")]
    tests.extend([
        (
            "postgres::every_subcommand_walks_a_database_through_its_life",
            every_subcommand_walks_a_database_through_its_life::<support::Postgres> as fn() -> _,
        ),
        (
            "postgres::baseline_records_an_existing_database_without_running_anything",
            baseline_records_an_existing_database_without_running_anything::<support::Postgres>,
        ),
        (
            "postgres::a_failing_step_exits_non_zero_naming_the_script",
            a_failing_step_exits_non_zero_naming_the_script::<support::Postgres>,
        ),
        (
            "postgres::passwords_never_appear_in_any_output",
            passwords_never_appear_in_any_output::<support::Postgres>,
        ),
        (
            "postgres::secrets_are_masked_by_structure_in_every_connection_string_form",
            secrets_are_masked_by_structure_in_every_connection_string_form,
        ),
    ]);
    #[cfg(feature = "mysql")]
    tests.extend([
        (
            "mysql::every_subcommand_walks_a_database_through_its_life",
            every_subcommand_walks_a_database_through_its_life::<support::Mysql> as fn() -> _,
        ),
        (
            "mysql::baseline_records_an_existing_database_without_running_anything",
            baseline_records_an_existing_database_without_running_anything::<support::Mysql>,
        ),
        (
            "mysql::a_failing_step_exits_non_zero_naming_the_script",
            a_failing_step_exits_non_zero_naming_the_script::<support::Mysql>,
        ),
        (
            "mysql::passwords_never_appear_in_any_output",
            passwords_never_appear_in_any_output::<support::Mysql>,
        ),
        (
            "mysql::mariadb_urls_and_driver_names_work",
            mariadb_urls_and_driver_names_work,
        ),
    ]);
    // `cargo test -- <filter>` runs the tests whose name contains it.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    tests.retain(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())));
    let mut failed = 0;
    for (name, test) in &tests {
        match std::panic::catch_unwind(test) {
            Ok(Ok(())) => println!("test {name} ... ok"),
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
    println!(
        "\ntest result: {} passed, {failed} failed",
        tests.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
