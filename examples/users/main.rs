//! The seed's own case, on a SQLite file next to this example.
//!
//! - SQL `1.0.0` creates `users(id, first_name, last_name)` with a few rows.
//! - Code `1.0.1` adds `full_name` and fills it with diesel queries.
//!
//! ```text
//! cargo run --example users                            # migrates to 1.0.1
//! cargo run --example users                            # again: nothing to do
//! APPLICATION_VERSION=1.0.0 cargo run --example users  # ahead: left in place, with a warning
//! APPLICATION_VERSION=1.0.0 MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0 cargo run --example users  # runs 1.0.1's down, once
//! ```
//!
//! With arguments it is the command line (configured by
//! `examples/users/migrate.toml`):
//!
//! ```text
//! cargo run --example users -- status
//! cargo run --example users -- plan
//! cargo run --example users -- down
//! cargo run --example users -- create add_email
//! cargo run --example users -- --help
//! ```

use std::process::ExitCode;

use diesel::prelude::*;
use diesel::{SqliteConnection, sql_query};
use migrate::{BoxError, MigrationScript, Migrator, embed_sql, migration_script};

embed_sql!("examples/users/migrations");

mod schema {
    diesel::table! {
        users (id) {
            id -> Integer,
            first_name -> Text,
            last_name -> Text,
            full_name -> Nullable<Text>,
        }
    }
}
use schema::users;

/// Adds `full_name`, filled from first and last name.
#[migration_script(version = "1.0.1", description = "add full name to users")]
pub struct AddUserFullName;

impl MigrationScript for AddUserFullName {
    type Connection = SqliteConnection;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut SqliteConnection) -> Result<(), BoxError> {
        sql_query("ALTER TABLE users ADD COLUMN full_name TEXT").execute(conn)?;
        diesel::update(users::table)
            .filter(users::full_name.is_null())
            .set(
                users::full_name.eq(users::first_name
                    .concat(" ")
                    .concat(users::last_name)
                    .nullable()),
            )
            .execute(conn)?;
        Ok(())
    }

    fn down(&self, conn: &mut SqliteConnection) -> Result<(), BoxError> {
        sql_query("ALTER TABLE users DROP COLUMN full_name").execute(conn)?;
        Ok(())
    }
}

/// An application passes `migrate::package_version!()`. This example lives in
/// the `migrate` package, so it states its own version instead.
fn migrator() -> Migrator {
    Migrator::new("1.0.1")
}

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        return migrate::cli::Cli::new(migrator())
            .config_file("examples/users/migrate.toml")
            .migrations_dir("examples/users/migrations")
            .scripts_dir("examples/users")
            .run();
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    // The library's warnings (a database ahead of the application, say) on
    // stderr, as an application shows its logs.
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .with_writer(std::io::stderr)
        .init();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/users/users.db");
    let mut conn = SqliteConnection::establish(path)?;

    let report = migrator().run(&mut conn)?;
    println!("{path}\n{report}");

    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let columns: Vec<Column> =
        sql_query("SELECT name FROM pragma_table_info('users')").load(&mut conn)?;
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    println!("users({})", names.join(", "));
    if names.contains(&"full_name") {
        let rows: Vec<(i32, Option<String>)> = users::table
            .select((users::id, users::full_name))
            .order(users::id)
            .load(&mut conn)?;
        for (id, full_name) in rows {
            println!(
                "  {id}: full_name = {}",
                full_name.as_deref().unwrap_or("NULL")
            );
        }
    } else {
        let rows: Vec<(i32, String, String)> = users::table
            .select((users::id, users::first_name, users::last_name))
            .order(users::id)
            .load(&mut conn)?;
        for (id, first, last) in rows {
            println!("  {id}: {first} {last}");
        }
    }
    Ok(())
}
