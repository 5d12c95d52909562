use migrate_macros::migration_script;

#[migration_script(version = "1.0.0")]
pub struct NotAScript;

fn main() {}
