//! The attribute's expansion is clean under strict lints, so it never warns in
//! a user's crate. `cargo clippy --all-targets -- -D warnings` covers the
//! clippy part in CI.
#![deny(
    warnings,
    missing_docs,
    unused_qualifications,
    unreachable_pub,
    unused_extern_crates,
    non_snake_case,
    clippy::all,
    clippy::pedantic
)]

use migrate::{BoxError, MigrationScript, migration_script};

/// A stand-in connection.
pub struct Conn;

/// Every key, and a pre-release version with upper-case letters.
#[migration_script(
    version = "0.1.0-RC.1+Build",
    name = "strict",
    description = "under deny lints",
    transaction = false,
    crate = ::migrate
)]
pub struct Strict;

impl MigrationScript for Strict {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

mod private {
    use super::{BoxError, Conn, MigrationScript, migration_script};

    /// A script in a private module, named in a private type.
    #[migration_script(version = "0.2.0")]
    pub(crate) struct Private;

    impl MigrationScript for Private {
        type Connection = Conn;
        fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
            Ok(())
        }
    }
}

#[test]
fn expansion_compiles_under_deny_lints() {
    let registry = migrate::registry::registered().unwrap();
    assert_eq!(registry.len(), 2);
    let _ = private::Private;
}
