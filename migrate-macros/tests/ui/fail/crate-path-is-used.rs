use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

// The explicit path is what the expansion names: a wrong one is reported on it.
#[migration_script(version = "1.0.0", crate = crate::nowhere)]
pub struct Script;

impl MigrationScript for Script {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
