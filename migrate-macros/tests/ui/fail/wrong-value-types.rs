use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

#[migration_script(version = 1, transaction = "no", name = "", description = false, crate = "migrate_core")]
pub struct Script;

impl MigrationScript for Script {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
