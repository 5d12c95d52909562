use migrate::diesel::SqliteConnection;

#[migrate::test(fixtures = ["tests/fixtures/no-such-file.sql"])]
fn seeded(conn: &mut SqliteConnection) {
    let _ = conn;
}

fn main() {}
