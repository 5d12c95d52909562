use migrate_macros::migration_script;

#[migration_script(version = "1.0.0")]
pub struct Script {
    pub table: &'static str,
}

fn main() {
    let _ = Script { table: "users" };
}
