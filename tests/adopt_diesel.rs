//! Adopting a project that diesel_migrations has been migrating: a database
//! that diesel_migrations itself migrated (from diesel's timestamp-named
//! folders in `tests/fixtures/diesel`) is recognised through
//! `__diesel_schema_migrations`, and the semver scripts run on top. On SQLite
//! and on the real PostgreSQL server.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::Connection;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use migrate::{Error, Migrator, Script};
use support::{TestDb, code, history};

fn diesel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diesel")
}

fn diesel_migrations() -> FileBasedMigrations {
    FileBasedMigrations::from_path(diesel_dir()).unwrap()
}

/// New work, in semver: a table that refers to diesel's `users`, and a row
/// that uses the column diesel's second migration added.
fn semver_scripts<D: TestDb>() -> Vec<Script> {
    vec![
        Script::sql(
            "1.0.0",
            "create_posts",
            "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id));",
            Some("DROP TABLE posts;"),
        ),
        code::<D::Conn>(
            "1.0.1",
            "INSERT INTO users (id, name, email) VALUES (1, 'ada', 'ada@example.com')",
            "DELETE FROM users WHERE id = 1",
        ),
    ]
}

fn migrator(scripts: Vec<Script>) -> Migrator {
    Migrator::new("1.0.1")
        .only_listed_scripts()
        .scripts(scripts)
        .lock_timeout(Duration::from_secs(30))
}

fn a_database_diesel_migrated_is_adopted_and_semver_scripts_run_on_top<D: TestDb>()
where
    D::Conn: MigrationHarness<<D::Conn as Connection>::Backend>,
{
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let ran = conn.run_pending_migrations(diesel_migrations()).unwrap();
    assert_eq!(ran.len(), 2);
    let m = migrator(semver_scripts::<D>());
    let adoption = m.adopt_diesel(&mut conn, &diesel_dir(), None).unwrap();
    assert_eq!(
        adoption.diesel_versions,
        ["20230501120000", "20230601090000"]
    );
    assert!(adoption.baseline.is_none());
    let report = m.run(&mut conn).unwrap();
    let steps: Vec<String> = report.steps.iter().map(|s| s.version.to_string()).collect();
    assert_eq!(steps, ["1.0.0", "1.0.1"]);
    assert_eq!(
        history::<D>(&mut conn, "migrate_history"),
        ["1.0.0:up", "1.0.1:up"]
    );
    // diesel's history is untouched, and diesel sees nothing pending.
    assert_eq!(conn.applied_migrations().unwrap().len(), 2);
    assert!(!conn.has_pending_migration(diesel_migrations()).unwrap());
    assert_eq!(
        D::strings(&mut conn, "SELECT email AS s FROM users"),
        ["ada@example.com"]
    );
}

fn an_incomplete_or_missing_diesel_history_is_refused_and_nothing_changes<D: TestDb>()
where
    D::Conn: MigrationHarness<<D::Conn as Connection>::Backend>,
{
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let m = migrator(semver_scripts::<D>());
    let err = m.adopt_diesel(&mut conn, &diesel_dir(), None).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "adopting the diesel history refused, nothing was changed: the database has no `__diesel_schema_migrations`"
        ),
        "{err}"
    );
    // Only the first diesel migration ran: the second is named.
    let first_only = tempfile::tempdir().unwrap();
    let first = "2023-05-01-120000_create_users";
    std::fs::create_dir(first_only.path().join(first)).unwrap();
    for file in ["up.sql", "down.sql"] {
        std::fs::copy(
            diesel_dir().join(first).join(file),
            first_only.path().join(first).join(file),
        )
        .unwrap();
    }
    conn.run_pending_migrations(FileBasedMigrations::from_path(first_only.path()).unwrap())
        .unwrap();
    let err = m.adopt_diesel(&mut conn, &diesel_dir(), None).unwrap_err();
    assert!(matches!(err, Error::AdoptionRefused { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("diesel migration(s) 2023-06-01-090000_add_email have not run on this database; run `diesel migration run` first"),
        "{err}"
    );
    assert!(
        !D::tables(&mut conn).contains(&"migrate_history".to_owned()),
        "nothing was created"
    );
}

fn a_baseline_records_semver_scripts_that_restate_the_diesel_schema<D: TestDb>()
where
    D::Conn: MigrationHarness<<D::Conn as Connection>::Backend>,
{
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    conn.run_pending_migrations(diesel_migrations()).unwrap();
    // The team restated diesel's schema as 0.9.0, for fresh databases.
    let mut scripts = vec![Script::sql(
        "0.9.0",
        "users_as_diesel_left_them",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200));",
        Some("DROP TABLE users;"),
    )];
    scripts.extend(semver_scripts::<D>());
    let m = migrator(scripts);
    let adoption = m
        .adopt_diesel(&mut conn, &diesel_dir(), Some("0.9.0"))
        .unwrap();
    let baseline = adoption.baseline.unwrap();
    assert_eq!(baseline.steps.len(), 1);
    let report = m.run(&mut conn).unwrap();
    let steps: Vec<String> = report.steps.iter().map(|s| s.version.to_string()).collect();
    assert_eq!(steps, ["1.0.0", "1.0.1"], "0.9.0 was recorded, not run");
}

on_sqlite_and_postgres!(
    a_database_diesel_migrated_is_adopted_and_semver_scripts_run_on_top,
    an_incomplete_or_missing_diesel_history_is_refused_and_nothing_changes,
    a_baseline_records_semver_scripts_that_restate_the_diesel_schema,
);
