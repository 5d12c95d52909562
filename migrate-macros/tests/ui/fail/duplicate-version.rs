use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

#[migration_script(version = "1.0.1")]
pub struct AddColumn;

#[migration_script(version = "1.0.1")]
pub struct FillColumn;

impl MigrationScript for AddColumn {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}
impl MigrationScript for FillColumn {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
