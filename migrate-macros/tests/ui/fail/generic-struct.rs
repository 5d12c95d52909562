use migrate_macros::migration_script;

#[migration_script(version = "1.0.0")]
pub struct Script<T>(std::marker::PhantomData<T>);

fn main() {
    let _ = Script::<u8>(std::marker::PhantomData);
}
