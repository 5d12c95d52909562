//! Two crates linked into one binary that use the same version cannot be
//! caught at compile time; `registered()` reports it before any database is
//! touched, naming both scripts and where they are declared.

// Keep the library linked: naming only a type is not a guarantee.
use library_scripts as _;
use library_scripts::Journal;
use migrate::registry::RegistryError;
use migrate::{BoxError, MigrationScript, migration_script};

/// Clashes with `library_scripts::CreateAudit` (5.0.0).
#[migration_script(version = "5.0.0+local")]
pub struct LocalAudit;

impl MigrationScript for LocalAudit {
    type Connection = Journal;
    fn up(&self, _: &mut Journal) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn the_same_version_in_two_crates_is_reported_with_both_locations() {
    let err = migrate::registry::registered().unwrap_err();
    let RegistryError::DuplicateVersion {
        version,
        first,
        first_location,
        second,
        second_location,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(version.to_string().split('+').next(), Some("5.0.0"));
    let mut found = [
        (first.as_str(), first_location.as_str()),
        (second.as_str(), second_location.as_str()),
    ];
    found.sort();
    assert_eq!(found[0].0, "CreateAudit");
    assert!(
        found[0]
            .1
            .starts_with("examples/library-scripts/src/lib.rs:"),
        "{}",
        found[0].1
    );
    assert_eq!(found[1].0, "LocalAudit");
    assert!(
        found[1].1.starts_with("tests/cross_crate_duplicate.rs:"),
        "{}",
        found[1].1
    );
}
