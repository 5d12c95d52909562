use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

// Every problem of one invocation is reported in the same build.
#[migration_script(version = "1.0", colour = "blue", name = "a", name = "b")]
pub struct Script;

impl MigrationScript for Script {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
