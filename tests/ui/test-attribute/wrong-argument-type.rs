pub struct NotAConnection;

#[migrate::test]
fn takes_something_else(conn: &mut NotAConnection) {
    let _ = conn;
}

fn main() {}
