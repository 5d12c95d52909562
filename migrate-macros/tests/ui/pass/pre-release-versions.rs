use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn;

macro_rules! script {
    ($name:ident) => {
        impl MigrationScript for $name {
            type Connection = Conn;
            fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
                Ok(())
            }
        }
    };
}

// Distinct pre-releases of one release are distinct versions.
#[migration_script(version = "2.0.0-alpha.2")]
pub struct Alpha2;
script!(Alpha2);

#[migration_script(version = "2.0.0-alpha.10")]
pub struct Alpha10;
script!(Alpha10);

#[migration_script(version = "2.0.0-rc-1")]
pub struct RcDash1;
script!(RcDash1);

#[migration_script(version = "2.0.0-rc.1")]
pub struct RcDot1;
script!(RcDot1);

#[migration_script(version = "2.0.0+build.7")]
pub struct Release;
script!(Release);

fn main() {
    let order: Vec<String> = migrate_core::registered()
        .unwrap()
        .iter()
        .map(|e| e.version.to_string())
        .collect();
    assert_eq!(order, ["2.0.0-alpha.2", "2.0.0-alpha.10", "2.0.0-rc.1", "2.0.0-rc-1", "2.0.0+build.7"]);
}
