//! Registered scripts (`#[migration_script]` and `embed_sql!`) on SQLite.

mod support;

type Conn = diesel::SqliteConnection;
type Db = support::Sqlite;
const NON_TRANSACTIONAL: &str = "vacuum";

migrate::embed_sql!("tests/fixtures/sqlite");

include!("registered/body.rs");
