// A user who reaches the core through a re-export names it with `crate = …`.
mod platform {
    pub use migrate_core as migrations;
}

use platform::migrations::{BoxError, MigrationScript};

pub struct Conn;

#[migrate_macros::migration_script(version = "3.1.4", crate = crate::platform::migrations)]
pub struct ThroughReexport;

impl MigrationScript for ThroughReexport {
    type Connection = Conn;
    fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {
    let registry = platform::migrations::registered().unwrap();
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.iter().next().unwrap().script.name(), "ThroughReexport");
}
