use migrate::diesel::SqliteConnection;

#[migrate::test]
fn takes_a_shared_reference(conn: &SqliteConnection) {
    let _ = conn;
}

fn main() {}
