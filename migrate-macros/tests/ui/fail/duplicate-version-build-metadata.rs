use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

#[migration_script(version = "1.0.1+build.1")]
pub struct First;

#[migration_script(version = "1.0.1+build.2")]
pub struct Second;

impl MigrationScript for First {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}
impl MigrationScript for Second {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
