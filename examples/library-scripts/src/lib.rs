//! Migration scripts kept in a library crate.
//!
//! A binary that depends on this crate but names nothing in it gets **none**
//! of these scripts: the linker drops the crate, and with it the registry
//! entries. Keep it linked with `use library_scripts as _;` in the binary.

use migrate::{BoxError, MigrationScript, migration_script};

/// A stand-in connection that records the statements it is given.
#[derive(Debug, Default)]
pub struct Journal(pub Vec<String>);

/// Creates the audit table.
#[migration_script(version = "5.0.0", description = "create the audit table")]
pub struct CreateAudit;

impl MigrationScript for CreateAudit {
    type Connection = Journal;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0
            .push("CREATE TABLE audit (id INTEGER PRIMARY KEY)".into());
        Ok(())
    }

    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("DROP TABLE audit".into());
        Ok(())
    }
}

/// Indexes the audit table (irreversible on purpose).
#[migration_script(version = "5.1.0-rc.1", name = "index audit")]
pub struct IndexAudit;

impl MigrationScript for IndexAudit {
    type Connection = Journal;

    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("CREATE INDEX audit_id ON audit (id)".into());
        Ok(())
    }
}
