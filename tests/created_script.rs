//! The Rust script `create --rust` writes compiles as it is: this is its
//! exact text for version 9.9.9 `sample` (`tests/cli.rs` checks that the
//! command still writes this text).

#[allow(unreachable_pub)] // as in an application's private module
#[path = "fixtures/created/v9_9_9_sample.rs"]
mod v9_9_9_sample;

#[test]
fn the_created_script_compiles_and_registers_itself() {
    let registry = migrate::registry::registered().unwrap();
    let script = registry
        .iter()
        .find(|e| e.version.to_string() == "9.9.9")
        .expect("the created script is registered");
    assert_eq!(script.script.name(), "sample");
    assert!(script.script.reversible());
    assert!(
        script
            .script
            .accepts_connection::<diesel::SqliteConnection>()
    );
}

#[test]
fn the_created_script_refuses_to_run_until_written() {
    use diesel::Connection;
    let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
    let err = migrate::Migrator::new("9.9.9").run(&mut conn).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("migration 9.9.9 `sample` (up) failed: panicked: not yet implemented: write migration 9.9.9 `sample`"),
        "{message}"
    );
}
