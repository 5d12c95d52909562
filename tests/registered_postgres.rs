//! Registered scripts (`#[migration_script]` and `embed_sql!`) on PostgreSQL.
#![cfg(feature = "postgres")]

mod support;

type Conn = diesel::PgConnection;
type Db = support::Postgres;
const NON_TRANSACTIONAL: &str = "concurrent_index";

migrate::embed_sql!("tests/fixtures/postgres");

include!("registered/body.rs");
