//! Several processes (this binary, re-executed) migrating one database at
//! once: every script is applied exactly once and every process succeeds.
//! Runs on SQLite and on the real PostgreSQL and MariaDB/MySQL servers.
//!
//! A custom harness (`harness = false`): the parent runs the checks and the
//! children, selected by `MIGRATE_CHILD_DB`, run the migrator.

mod support;

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use migrate::backend::Backend;
use migrate::{Migrator, Script};
use support::{TestDb, code, history, slow};

const PROCESSES: usize = 4;

fn scripts<C: Backend + SimpleConnection>() -> Vec<Script> {
    vec![
        Script::sql(
            "1.0.0",
            "create_log",
            "CREATE TABLE log (v TEXT NOT NULL);",
            Some("DROP TABLE log;"),
        ),
        // Sleeps inside its transaction, so the others must wait for the lock.
        slow::<C>(
            "1.0.1",
            "INSERT INTO log VALUES ('1.0.1')",
            Duration::from_millis(400),
        ),
        code::<C>("1.0.2", "INSERT INTO log VALUES ('1.0.2')", ""),
    ]
}

fn child<D: TestDb>(db: &D) -> ExitCode {
    let mut conn = db.connect();
    let mut migrator = Migrator::new("1.0.2")
        .only_listed_scripts()
        .scripts(scripts::<D::Conn>());
    if let Some(ms) = std::env::var("MIGRATE_CHILD_LOCK_TIMEOUT_MS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        migrator = migrator.lock_timeout(Duration::from_millis(ms));
    }
    match migrator.run(&mut conn) {
        Ok(report) => {
            println!("steps={}", report.steps.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("child failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the children together and returns the total steps they reported.
fn spawn_round(backend: &str, url: &str) -> Result<usize, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let handles: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .env("MIGRATE_CHILD_DB", url)
                .env("MIGRATE_CHILD_BACKEND", backend)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut total = 0;
    for handle in handles {
        let out = handle.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "a child exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        total += stdout
            .trim()
            .strip_prefix("steps=")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("unexpected child output {stdout:?}"))?;
    }
    Ok(total)
}

fn run_round<D: TestDb>(db: &D, backend: &str, url: &str) -> Result<(), String> {
    // A first deploy: all processes start together on an empty database.
    let steps = spawn_round(backend, url)?;
    if steps != 3 {
        return Err(format!(
            "{PROCESSES} processes ran {steps} steps in all; expected each of 3 scripts once"
        ));
    }
    let mut conn = db.connect();
    let rows = history::<D>(&mut conn, "migrate_history");
    if rows != ["1.0.0:up", "1.0.1:up", "1.0.2:up"] {
        return Err(format!("history {rows:?}"));
    }
    let log = D::strings(&mut conn, "SELECT v AS s FROM log ORDER BY v");
    if log != ["1.0.1", "1.0.2"] {
        return Err(format!("effects {log:?}"));
    }
    // A restart of every replica: nothing to do, and nobody fails.
    let steps = spawn_round(backend, url)?;
    if steps != 0 {
        return Err(format!("the migrated database took {steps} more steps"));
    }
    Ok(())
}

/// The SQLite lock file, made by another user (root, say) and not
/// writable by this one, still locks: while this process holds it, a
/// migration by a user who can only read it waits, and times out; once it
/// is free, that migration succeeds. As root, the child runs as `nobody`,
/// to whom the file is not writable; as anyone else, the file is made
/// read-only.
fn a_lock_file_another_user_made_still_locks() -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let set_mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())
    };
    set_mode(dir.path(), 0o777)?;
    let db = dir.path().join("app.db");
    let lock = dir.path().join("app.db-migrate.lock");
    std::fs::write(&lock, "").map_err(|e| e.to_string())?;
    set_mode(&lock, 0o444)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let as_other_user = if root { " (as nobody)" } else { "" };
    let run = |timeout_ms: u64| {
        let mut cmd = if root {
            let mut cmd = Command::new("runuser");
            cmd.args(["--preserve-environment", "-u", "nobody", "--"])
                .arg(&exe);
            cmd
        } else {
            Command::new(&exe)
        };
        cmd.env("MIGRATE_CHILD_DB", &db)
            .env("MIGRATE_CHILD_BACKEND", "sqlite")
            .env("MIGRATE_CHILD_LOCK_TIMEOUT_MS", timeout_ms.to_string())
            .output()
            .map_err(|e| format!("cannot start the child: {e}"))
    };
    // Held here: the other user's migration waits for it, and gives up.
    let held = std::fs::File::open(&lock).map_err(|e| e.to_string())?;
    held.try_lock()
        .map_err(|e| format!("cannot lock here: {e}"))?;
    let out = run(300)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !stderr.contains("lock") {
        return Err(format!(
            "the child{as_other_user} ran while the lock was held elsewhere: {:?} {stderr}",
            out.status
        ));
    }
    held.unlock().map_err(|e| e.to_string())?;
    let out = run(30_000)?;
    if !out.status.success() {
        return Err(format!(
            "the child{as_other_user} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let steps = String::from_utf8_lossy(&out.stdout);
    if steps.trim() != "steps=3" {
        return Err(format!("unexpected child output {steps:?}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    if let (Ok(url), Ok(backend)) = (
        std::env::var("MIGRATE_CHILD_DB"),
        std::env::var("MIGRATE_CHILD_BACKEND"),
    ) {
        return match backend.as_str() {
            "sqlite" => child(&support::Sqlite::at(&url)),
            #[cfg(feature = "postgres")]
            "postgres" => child(&support::Postgres::at(url)),
            #[cfg(feature = "mysql")]
            "mysql" => child(&support::Mysql::at(url)),
            other => {
                eprintln!("unknown backend {other}");
                ExitCode::FAILURE
            }
        };
    }
    let mut results: Vec<(&str, Result<(), String>)> = vec![(
        "a_lock_file_another_user_made_still_locks",
        a_lock_file_another_user_made_still_locks(),
    )];
    let sqlite = support::Sqlite::create().expect("a temporary SQLite file");
    results.push((
        "processes_migrating_one_sqlite_file_apply_each_script_once",
        run_round(&sqlite, "sqlite", &sqlite.path),
    ));
    #[cfg(feature = "postgres")]
    if let Some(pg) = support::Postgres::create() {
        let url = pg.url.clone();
        results.push((
            "processes_migrating_one_postgres_database_apply_each_script_once",
            run_round(&pg, "postgres", &url),
        ));
    }
    #[cfg(feature = "mysql")]
    if let Some(my) = support::Mysql::create() {
        let url = my.url.clone();
        results.push((
            "processes_migrating_one_mysql_database_apply_each_script_once",
            run_round(&my, "mysql", &url),
        ));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (name, result) in &results {
        match result {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => println!("test {name} ... FAILED: {e}"),
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
