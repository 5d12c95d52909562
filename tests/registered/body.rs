// Shared by `registered_sqlite.rs`, `registered_postgres.rs` and
// `registered_mysql.rs`: the including file defines `Conn`, `Db` (its
// `TestDb`) and calls `embed_sql!` on its fixture folder (1.0.0 and 1.2.0 as
// SQL, 1.3.0 non-transactional SQL).

use diesel::RunQueryDsl;
use migrate::{BoxError, MigrationScript, Migrator, Script, migration_script};
use support::{TestDb, history};

/// Adds a third item.
#[migration_script(version = "1.0.10", description = "seed a third item")]
pub struct SeedPlum;

impl MigrationScript for SeedPlum {
    type Connection = Conn;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
        diesel::sql_query("INSERT INTO items (id, name) VALUES (3, 'plum')").execute(conn)?;
        Ok(())
    }

    fn down(&self, conn: &mut Conn) -> Result<(), BoxError> {
        diesel::sql_query("DELETE FROM items WHERE id = 3").execute(conn)?;
        Ok(())
    }
}

/// Upper-cases every name.
#[migration_script(version = "1.1.0", name = "uppercase names")]
pub struct Uppercase;

impl MigrationScript for Uppercase {
    type Connection = Conn;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
        diesel::sql_query("UPDATE items SET name = upper(name)").execute(conn)?;
        Ok(())
    }

    fn down(&self, conn: &mut Conn) -> Result<(), BoxError> {
        diesel::sql_query("UPDATE items SET name = lower(name)").execute(conn)?;
        Ok(())
    }
}

fn names(conn: &mut Conn) -> Vec<String> {
    Db::strings(conn, "SELECT name AS s FROM items ORDER BY id")
}

#[test]
fn sql_folders_and_code_scripts_form_one_plan_in_semver_order() {
    let Some(db) = Db::create() else { return };
    let mut conn = db.connect();
    let report = Migrator::new("1.3.0").run(&mut conn).unwrap();
    let steps: Vec<String> = report.steps.iter().map(|s| format!("{} {} ({})", s.version, s.name, s.kind)).collect();
    assert_eq!(
        steps,
        [
            "1.0.0 create_items (sql)",
            "1.0.10 SeedPlum (code)",
            "1.1.0 uppercase names (code)",
            "1.2.0 index_items (sql)",
            format!("1.3.0 {} (sql)", NON_TRANSACTIONAL).as_str(),
        ]
    );
    assert_eq!(names(&mut conn), ["APPLE", "PEAR", "PLUM"]);
    let described = Db::strings(&mut conn, "SELECT description AS s FROM migrate_history WHERE version = '1.0.10'");
    assert_eq!(described, ["seed a third item"]);
}

#[test]
fn a_script_both_registered_and_listed_by_hand_runs_once() {
    let Some(db) = Db::create() else { return };
    let mut conn = db.connect();
    let report = Migrator::new("1.1.0")
        .scripts([Script::new("1.0.10", &SeedPlum), Script::new("1.1.0", &Uppercase).with_name("uppercase names")])
        .run(&mut conn)
        .unwrap();
    assert_eq!(report.steps.len(), 3);
    assert_eq!(history::<Db>(&mut conn, "migrate_history"), ["1.0.0:up", "1.0.10:up", "1.1.0:up"]);
}

#[test]
fn an_older_application_version_runs_down_when_authorized_and_keeps_the_data() {
    // The explicit version, not `APPLICATION_VERSION`, so that parallel tests
    // do not race on the process environment. The environment's precedence is
    // unit-tested in the core, and `cargo run --example users` with
    // `APPLICATION_VERSION=1.0.0` shows it end to end.
    let Some(db) = Db::create() else { return };
    let mut conn = db.connect();
    Migrator::new("1.2.0").run(&mut conn).unwrap();
    // Without an authorization, the older application changes nothing.
    let old = Migrator::new("9.9.9").app_version("1.0.0").run(&mut conn).unwrap();
    assert!(old.steps.is_empty() && old.ahead.len() == 3, "{old}");
    let down = Migrator::new("9.9.9").app_version("1.0.0").authorize_downgrade_to("1.0.0").run(&mut conn).unwrap();
    let steps: Vec<String> = down.steps.iter().map(|s| format!("{} {}", s.direction, s.version)).collect();
    assert_eq!(steps, ["down 1.2.0", "down 1.1.0", "down 1.0.10"]);
    assert_eq!(names(&mut conn), ["apple", "pear"]);
}

#[test]
fn the_embedded_checksum_ignores_line_endings_and_matches_the_runtime_one() {
    let registry = migrate::registry::registered().unwrap();
    let create = registry.get(&"1.0.0".parse().unwrap()).unwrap();
    let up = match create.body() {
        migrate_core::Body::Sql(sql) => sql.up,
        migrate_core::Body::Code(_) => panic!("1.0.0 is SQL"),
    };
    assert!(up.contains("\r\n"), "the fixture is written with CRLF on purpose");
    assert_eq!(create.checksum(), Some(migrate::registry::sql_checksum(&up.replace("\r\n", "\n")).as_str()));
    let non_transactional = registry.get(&"1.3.0".parse().unwrap()).unwrap();
    assert!(!non_transactional.transactional() && create.transactional());
}

#[test]
fn what_the_expansions_work_out_at_compile_time_equals_the_runtime_computation() {
    let registry = migrate::registry::registered().unwrap();
    assert_eq!(registry.len(), 5);
    for entry in registry.iter() {
        let v = entry.version.as_semver();
        let precomputed = entry.script.precomputed().unwrap_or_else(|| panic!("{v} came without its precomputed part"));
        assert_eq!(precomputed.digest(), migrate_core::entry_digest(v, entry.script.checksum()), "{v}");
        assert_eq!(precomputed.release(), Some([v.major, v.minor, v.patch]), "{v}");
    }
}

#[test]
fn status_and_plan_show_registered_scripts() {
    let Some(db) = Db::create() else { return };
    let mut conn = db.connect();
    Migrator::new("1.0.10").run(&mut conn).unwrap();
    let status = Migrator::new("1.2.0").status(&mut conn).unwrap();
    let rows: Vec<String> = status.rows.iter().map(|r| format!("{} {}", r.version, r.state)).collect();
    assert_eq!(rows, ["1.0.0 applied", "1.0.10 applied", "1.1.0 pending", "1.2.0 pending", "1.3.0 above app version"]);
    let dry = Migrator::new("1.2.0").plan(&mut conn).unwrap();
    assert!(dry.to_string().contains("| CREATE INDEX items_name ON items (name);"), "{dry}");
}
