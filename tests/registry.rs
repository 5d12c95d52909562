//! The registry as an application sees it: scripts from this crate and from a
//! linked library crate, hand-listed scripts, and connection checks.

// Scripts in a library crate are linked only when the binary names the crate.
// Without this line, `library_scripts`' two scripts would silently be absent.
use library_scripts as _;

use library_scripts::Journal;
use migrate::registry::Registry;
use migrate::registry::RegistryError;
use migrate::registry::ScriptError;
use migrate::{BoxError, MigrationScript, Script, migration_script};

/// Adds a column.
#[migration_script(version = "1.0.10", description = "add a column")]
pub struct AddColumn;

impl MigrationScript for AddColumn {
    type Connection = Journal;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("add column".into());
        Ok(())
    }
}

/// Creates a table.
#[migration_script(version = "1.0.9")]
pub struct CreateTable;

impl MigrationScript for CreateTable {
    type Connection = Journal;
    fn up(&self, _: &mut Journal) -> Result<(), BoxError> {
        Err("the table already exists".into())
    }
}

/// Not registered: only ever listed by hand.
pub struct HandListed;

impl MigrationScript for HandListed {
    type Connection = Journal;
    fn up(&self, _: &mut Journal) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Written for another backend.
pub struct OtherBackend;

impl MigrationScript for OtherBackend {
    type Connection = String;
    fn up(&self, _: &mut String) -> Result<(), BoxError> {
        Ok(())
    }
}

fn versions(registry: &Registry) -> Vec<String> {
    registry.iter().map(|e| e.version.to_string()).collect()
}

#[test]
fn registered_scripts_from_this_crate_and_a_linked_library_come_back_in_semver_order() {
    let registry = migrate::registry::registered().unwrap();
    assert_eq!(
        versions(&registry),
        ["1.0.9", "1.0.10", "5.0.0", "5.1.0-rc.1"]
    );
    let names: Vec<&str> = registry.iter().map(|e| e.script.name()).collect();
    assert_eq!(
        names,
        ["CreateTable", "AddColumn", "CreateAudit", "index audit"]
    );
}

#[test]
fn a_script_both_registered_and_listed_by_hand_is_kept_once() {
    let registry = migrate::registry::registered()
        .unwrap()
        .with([
            Script::new("1.0.10", &AddColumn),
            Script::new("2.0.0", &HandListed),
        ])
        .unwrap();
    assert_eq!(
        versions(&registry),
        ["1.0.9", "1.0.10", "2.0.0", "5.0.0", "5.1.0-rc.1"]
    );
    assert_eq!(
        registry.get(&"2.0.0".parse().unwrap()).unwrap().name(),
        "HandListed"
    );
}

#[test]
fn one_script_listed_under_two_versions_is_an_error_rather_than_running_twice() {
    let err = migrate::registry::registered()
        .unwrap()
        .with([Script::new("1.0.11", &AddColumn)])
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::SameScriptTwice { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("script `AddColumn` is listed with two versions"),
        "{err}"
    );
    // The same version with other build metadata is the same version: kept once.
    let registry = migrate::registry::registered()
        .unwrap()
        .with([Script::new("1.0.10+hand", &AddColumn)])
        .unwrap();
    assert_eq!(registry.len(), 4);
}

#[test]
fn two_different_scripts_with_one_version_are_an_error_naming_both_locations() {
    let err = migrate::registry::registered()
        .unwrap()
        .with([Script::new("1.0.9+other", &HandListed)])
        .unwrap_err();
    let RegistryError::DuplicateVersion {
        first,
        second,
        first_location,
        second_location,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    let mut names = [first.as_str(), second.as_str()];
    names.sort();
    assert_eq!(names, ["CreateTable", "HandListed"]);
    for location in [first_location, second_location] {
        assert!(location.starts_with("tests/registry.rs:"), "{location}");
    }
    assert!(
        err.to_string().contains("give one of them another version"),
        "{err}"
    );
}

#[test]
fn a_hand_listed_script_with_an_invalid_version_is_an_error_naming_it() {
    let line = line!() + 1;
    let err = Registry::new([Script::new("1.0", &HandListed)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "script `HandListed` at tests/registry.rs:{line} has an invalid version: `1.0` is not a semver version (expected MAJOR.MINOR.PATCH, e.g. `1.0.1`): unexpected end of input while parsing minor version number"
        )
    );
}

#[test]
fn a_hand_listed_sql_script_without_a_statement_is_an_error_naming_it() {
    for (up, down, direction) in [
        ("", None, "up"),
        ("  -- TODO\n/* later */\n", None, "up"),
        ("CREATE TABLE t (id INT);", Some("-- nothing"), "down"),
    ] {
        let line = line!() + 1;
        let err = Registry::new([Script::sql("1.0.3", "blank", up, down)]).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "SQL migration 1.0.3 `blank` at tests/registry.rs:{line}: its {direction} SQL has no statement"
            )),
            "{err}"
        );
    }
    assert!(migrate_core::sql_has_statement("/* why */ SELECT '--';"));
    assert!(!migrate_core::sql_has_statement("-- a\n  /* b\n c */ -- d"));
    assert!(Registry::new([Script::sql("1.0.3", "ok", "-- why\nSELECT 1;", None)]).is_ok());
}

#[test]
fn a_hand_listed_sql_script_with_the_mysql_clients_delimiter_is_an_error_naming_it() {
    let line = line!() + 1;
    let err = Registry::new([Script::sql(
        "1.0.3",
        "routine",
        "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\nDELIMITER ;",
        None,
    )])
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "SQL migration 1.0.3 `routine` at tests/registry.rs:{line}: its up SQL, line 1, has `DELIMITER`, a command of the mysql client that no server runs"
        )),
        "{err}"
    );
    // Without it, the routine is one statement.
    assert!(
        Registry::new([Script::sql(
            "1.0.3",
            "routine",
            "CREATE PROCEDURE p() BEGIN SELECT 1; END;",
            None
        )])
        .is_ok()
    );
}

#[test]
fn scripts_written_for_another_backend_are_refused_before_anything_runs() {
    let registry = Registry::new([
        Script::new("1.0.0", &HandListed),
        Script::new("1.1.0", &OtherBackend),
    ])
    .unwrap();
    let err = registry.check_connection::<Journal>().unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("a script is written for another backend than `library_scripts::Journal`: 1.1.0 `OtherBackend` (expects `alloc::string::String`) at tests/registry.rs:"), "{msg}");
    assert!(registry.check_connection::<String>().is_err());
    assert!(
        Registry::new([Script::new("1.0.0", &HandListed)])
            .unwrap()
            .check_connection::<Journal>()
            .is_ok()
    );
}

#[test]
fn running_a_script_on_the_wrong_connection_fails_without_running_it() {
    let script = Script::new("1.1.0", &OtherBackend);
    let mut journal = Journal::default();
    let err = script.run_up(&mut journal).unwrap_err();
    assert!(matches!(err, ScriptError::WrongConnection { .. }), "{err}");
}

#[test]
fn scripts_run_on_their_connection_and_report_their_own_errors() {
    let registry = migrate::registry::registered().unwrap();
    let mut journal = Journal::default();
    let add = registry.get(&"1.0.10".parse().unwrap()).unwrap();
    add.run_up(&mut journal).unwrap();
    assert_eq!(journal.0, ["add column"]);
    let create = registry.get(&"1.0.9".parse().unwrap()).unwrap();
    assert_eq!(
        create.run_up(&mut journal).unwrap_err().to_string(),
        "the table already exists"
    );
}

#[test]
fn a_script_without_down_is_irreversible_and_its_default_down_says_so() {
    let registry = migrate::registry::registered().unwrap();
    let add = registry.get(&"1.0.10".parse().unwrap()).unwrap();
    assert!(!add.reversible());
    let err = add.run_down(&mut Journal::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("this script has no `down`"),
        "{err}"
    );
    let audit = registry.get(&"5.0.0".parse().unwrap()).unwrap();
    assert!(audit.reversible());
}

/// Writes `down` but forgets `REVERSIBLE`.
struct DownWithoutReversible;

impl MigrationScript for DownWithoutReversible {
    type Connection = Journal;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("up".into());
        Ok(())
    }
    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("down".into());
        Ok(())
    }
}

#[test]
fn a_down_written_without_reversible_is_never_run() {
    let script = Script::new("1.0.0", &DownWithoutReversible);
    assert!(!script.reversible());
    let mut journal = Journal::default();
    let err = script.run_down(&mut journal).unwrap_err();
    assert!(
        err.to_string()
            .contains("set `const REVERSIBLE: bool = true`"),
        "{err}"
    );
    assert!(journal.0.is_empty(), "{:?}", journal.0);
}

/// A script with data: each value is its own script.
struct Insert(&'static str);

impl MigrationScript for Insert {
    type Connection = Journal;
    const REVERSIBLE: bool = true;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push(format!("insert {}", self.0));
        Ok(())
    }
    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push(format!("delete {}", self.0));
        Ok(())
    }
}

static FIRST: Insert = Insert("first");
static SECOND: Insert = Insert("second");

#[test]
fn a_script_with_data_runs_on_its_own_value_and_is_the_same_script_only_as_that_value() {
    let (first, second) = (Script::new("1.0.0", &FIRST), Script::new("1.1.0", &SECOND));
    let mut journal = Journal::default();
    first.run_up(&mut journal).unwrap();
    second.run_up(&mut journal).unwrap();
    second.run_down(&mut journal).unwrap();
    assert_eq!(
        journal.0,
        ["insert first", "insert second", "delete second"]
    );
    assert!(first.is_same_script(&Script::new("2.0.0", &FIRST)));
    assert!(!first.is_same_script(&second));
}

#[test]
fn the_registry_feeds_the_planner() {
    let registry = migrate::registry::registered().unwrap();
    let known = registry.known();
    let plan = migrate::plan::plan(
        &migrate::Target::Version("5.0.0".parse().unwrap()),
        &[],
        &known,
        Default::default(),
    )
    .unwrap();
    assert_eq!(
        plan.to_string(),
        "(empty) -> 5.0.0: 3 steps\n    1. up   1.0.9 CreateTable (code)\n    2. up   1.0.10 AddColumn (code)\n    3. up   5.0.0 CreateAudit (code)"
    );
}

/// Writes a `down`, but does not declare it (`REVERSIBLE` stays `false`).
pub struct UndeclaredDown;

impl MigrationScript for UndeclaredDown {
    type Connection = Journal;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("up".into());
        Ok(())
    }
    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("undeclared down".into());
        Ok(())
    }
}

/// Declares its `down`.
pub struct DeclaredDown;

impl MigrationScript for DeclaredDown {
    type Connection = Journal;
    const REVERSIBLE: bool = true;
    fn up(&self, _: &mut Journal) -> Result<(), BoxError> {
        Ok(())
    }
    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("down".into());
        Ok(())
    }
}

#[test]
fn down_runs_only_where_it_is_declared() {
    let mut journal = Journal::default();
    let undeclared = Script::new("1.2.0", &UndeclaredDown);
    let err = undeclared.run_down(&mut journal).unwrap_err();
    assert!(
        err.to_string().starts_with("this script has no `down`"),
        "{err}"
    );
    undeclared.run_up(&mut journal).unwrap();
    Script::new("1.3.0", &DeclaredDown)
        .run_down(&mut journal)
        .unwrap();
    assert_eq!(journal.0, ["up", "down"]);
    // The connection is checked before the direction: a script without a
    // `down`, on the wrong connection, hears about the connection.
    let err = Script::new("1.2.0", &UndeclaredDown)
        .run_down(&mut String::new())
        .unwrap_err();
    assert!(matches!(err, ScriptError::WrongConnection { .. }), "{err}");
}
