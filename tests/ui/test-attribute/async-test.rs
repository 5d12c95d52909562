use migrate::diesel::SqliteConnection;

#[migrate::test]
async fn later(conn: &mut SqliteConnection) {
    let _ = conn;
}

fn main() {}
