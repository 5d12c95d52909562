use migrate_macros::migration_script;

// A syntax error in the arguments still emits the struct: `main` compiles.
#[migration_script(version "1.0.0")]
pub struct Script;

fn main() {
    let _ = Script;
}
