use migrate_macros::migration_script;

#[migration_script(version = "1.0.0")]
pub enum Script {
    A,
}

fn main() {
    // The enum is still emitted: this use does not cascade into more errors.
    let _ = Script::A;
}
