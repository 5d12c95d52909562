//! db-migrate's `Cart` table as an SQL migration with `down.sql`, on a SQLite
//! file next to this example.
//!
//! ```text
//! cargo run --example cart                            # creates Cart (1.0.0)
//! APPLICATION_VERSION=0.0.0 cargo run --example cart  # drops it again
//! ```

use std::process::ExitCode;

use migrate::diesel::{Connection, SqliteConnection};
use migrate::{Migrator, embed_sql};

embed_sql!("examples/cart/migrations");

fn main() -> ExitCode {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cart/cart.db");
    let result = SqliteConnection::establish(path)
        .map_err(migrate::BoxError::from)
        .and_then(|mut conn| Ok(Migrator::new("1.0.0").run(&mut conn)?));
    match result {
        Ok(report) => {
            println!("{path}\n{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
