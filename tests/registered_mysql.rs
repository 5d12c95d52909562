//! Registered scripts (`#[migration_script]` and `embed_sql!`) on MySQL or
//! MariaDB.
#![cfg(feature = "mysql")]

mod support;

type Conn = diesel::MysqlConnection;
type Db = support::Mysql;
const NON_TRANSACTIONAL: &str = "online_index";

migrate::embed_sql!("tests/fixtures/mysql");

include!("registered/body.rs");
