use migrate_core::BoxError;
use migrate_macros::migration_script;

pub struct Conn;

#[migration_script(version = "1.0.0")]
pub fn script(_: &mut Conn) -> Result<(), BoxError> {
    Ok(())
}

fn main() {
    let _ = script;
}
