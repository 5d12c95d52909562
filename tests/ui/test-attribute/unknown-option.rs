use migrate::diesel::SqliteConnection;

#[migrate::test(fixture = ["a.sql"], version = "1.0")]
fn misspelt(conn: &mut SqliteConnection) {
    let _ = conn;
}

fn main() {}
