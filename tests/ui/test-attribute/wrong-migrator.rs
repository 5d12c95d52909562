fn not_a_migrator() -> u32 {
    1
}

#[migrate::test(migrator = not_a_migrator)]
fn custom(conn: &mut migrate::diesel::SqliteConnection) {
    let _ = conn;
}

fn main() {}
