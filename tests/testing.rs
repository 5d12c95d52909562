//! `#[migrate::test]`: each test gets a database of its own, migrated from
//! a template, on SQLite, PostgreSQL and MySQL/MariaDB.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection, sql_query};
use migrate::Migrator;
use migrate::testing::{TestDatabase, TestSpec};

// Portable SQL: the same folders serve the three backends.
migrate::embed_sql!("tests/fixtures/testing");

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn user_names<C: migrate::backend::Backend>(conn: &mut C) -> Vec<String>
where
    for<'a> diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'a, C, Name>,
{
    sql_query("SELECT name FROM users ORDER BY id")
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect()
}

fn applied<C: migrate::backend::Backend>(conn: &mut C) -> i64
where
    for<'a> diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'a, C, Count>,
{
    sql_query("SELECT COUNT(*) AS n FROM migrate_history")
        .load::<Count>(conn)
        .unwrap()[0]
        .n
}

/// The tests of one backend: the same bodies on each connection type.
macro_rules! backend_tests {
    ($module:ident, $conn:ty) => {
        mod $module {
            use super::*;

            #[migrate::test]
            fn a_test_gets_every_migration_of_the_build(conn: &mut $conn) {
                conn.batch_execute("INSERT INTO users (id, name, email) VALUES (7, 'Lin', 'l@x')")
                    .unwrap();
                assert_eq!(user_names(conn), ["Lin"]);
                assert_eq!(applied(conn), 2);
            }

            #[migrate::test]
            fn tests_do_not_see_each_others_rows(conn: &mut $conn) {
                conn.batch_execute("INSERT INTO users (id, name) VALUES (7, 'Mine')").unwrap();
                // Another test's copy, made while this one holds a row: empty.
                let mut other = TestDatabase::<$conn>::new(&TestSpec::new("testing::other"));
                assert!(user_names(other.conn()).is_empty());
                other.conn().batch_execute("INSERT INTO users (id, name) VALUES (7, 'Other')").unwrap();
                assert_eq!(user_names(conn), ["Mine"]);
                assert_eq!(applied(other.conn()), 2);
            }

            #[migrate::test(fixtures = ["tests/fixtures/testing-seed/users.sql", "tests/fixtures/testing-seed/more-users.sql"])]
            fn fixtures_are_applied_after_the_migrations_in_order(conn: &mut $conn) {
                assert_eq!(user_names(conn), ["Ada", "Grace"]);
            }

            #[migrate::test(version = "1.0.0", fixtures = ["tests/fixtures/testing-seed/users.sql"])]
            fn a_migration_is_tested_from_the_version_before_it(
                conn: &mut $conn,
            ) -> Result<(), migrate::BoxError> {
                assert_eq!(applied(conn), 1);
                Migrator::new("1.1.0").run(conn)?;
                conn.batch_execute("UPDATE users SET email = 'ada@x' WHERE id = 1").unwrap();
                assert_eq!(user_names(conn), ["Ada"]);
                assert_eq!(applied(conn), 2);
                Ok(())
            }

            #[migrate::test(migrator = listed_only)]
            fn a_custom_migrator_picks_the_table_and_scripts(conn: &mut $conn) {
                conn.batch_execute("SELECT 1 FROM custom_history").unwrap();
                conn.batch_execute("SELECT 1 FROM things").unwrap();
                assert!(conn.batch_execute("SELECT 1 FROM users").is_err());
            }

            #[test]
            fn a_passing_test_drops_its_database_and_a_failing_one_keeps_it() {
                let spec = TestSpec::new("testing::kept");
                let place = TestDatabase::<$conn>::new(&spec).place().to_owned();
                assert!(!exists::<$conn>(&place), "{place} is dropped after a pass");

                let kept = std::panic::catch_unwind(|| {
                    let mut db = TestDatabase::<$conn>::new(&spec);
                    let place = db.place().to_owned();
                    db.conn().batch_execute("INSERT INTO users (id, name) VALUES (1, 'x')").unwrap();
                    std::panic::panic_any(place);
                })
                .unwrap_err()
                .downcast::<String>()
                .unwrap();
                assert!(exists::<$conn>(&kept), "{kept} is kept after a failure");
                drop_place::<$conn>(&kept);
            }

            #[test]
            fn a_test_that_returns_an_error_fails_and_names_its_kept_database() {
                let spec = TestSpec::new("testing::returns_error");
                let message = std::panic::catch_unwind(|| {
                    migrate::testing::run::<$conn, _>(&spec, |_| Err::<(), _>("boom"))
                })
                .unwrap_err()
                .downcast::<String>()
                .unwrap();
                assert!(message.contains("the test returned an error: \"boom\""), "{message}");
                let place = message.rsplit("its database is kept: ").next().unwrap().trim_end_matches(')');
                assert!(exists::<$conn>(place), "{message}");
                drop_place::<$conn>(place);
            }
        }
    };
}

fn listed_only() -> Migrator {
    Migrator::new("0.0.0")
        .only_listed_scripts()
        .scripts([migrate::Script::sql(
            "1.0.0",
            "create_things",
            "CREATE TABLE things (id INTEGER PRIMARY KEY);",
            None,
        )])
        .table("custom_history")
}

/// Whether a test database is still there.
fn exists<C: Place>(place: &str) -> bool {
    C::exists(place)
}

fn drop_place<C: Place>(place: &str) {
    C::drop_place(place)
}

trait Place {
    fn exists(place: &str) -> bool;
    fn drop_place(place: &str);
}

impl Place for SqliteConnection {
    fn exists(place: &str) -> bool {
        std::path::Path::new(place).exists()
    }
    fn drop_place(place: &str) {
        std::fs::remove_file(place).unwrap();
    }
}

backend_tests!(sqlite, SqliteConnection);

#[cfg(feature = "postgres")]
mod pg_place {
    use super::*;
    use diesel::{Connection, PgConnection};

    fn admin() -> PgConnection {
        let url = std::env::var("MIGRATE_TEST_POSTGRES_URL").expect("MIGRATE_TEST_POSTGRES_URL");
        PgConnection::establish(&url).unwrap()
    }

    impl Place for PgConnection {
        fn exists(place: &str) -> bool {
            let rows: Vec<Count> =
                sql_query("SELECT COUNT(*) AS n FROM pg_database WHERE datname = $1")
                    .bind::<Text, _>(place)
                    .load(&mut admin())
                    .unwrap();
            rows[0].n == 1
        }
        fn drop_place(place: &str) {
            admin()
                .batch_execute(&format!("DROP DATABASE \"{place}\" WITH (FORCE)"))
                .unwrap();
        }
    }
}

#[cfg(feature = "postgres")]
backend_tests!(postgres, diesel::PgConnection);

#[cfg(feature = "mysql")]
mod my_place {
    use super::*;
    use diesel::{Connection, MysqlConnection};

    fn admin() -> MysqlConnection {
        let url = std::env::var("MIGRATE_TEST_MYSQL_URL").expect("MIGRATE_TEST_MYSQL_URL");
        MysqlConnection::establish(&url).unwrap()
    }

    impl Place for MysqlConnection {
        fn exists(place: &str) -> bool {
            let rows: Vec<Count> = sql_query(
                "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?",
            )
            .bind::<Text, _>(place)
            .load(&mut admin())
            .unwrap();
            rows[0].n == 1
        }
        fn drop_place(place: &str) {
            admin()
                .batch_execute(&format!("DROP DATABASE `{place}`"))
                .unwrap();
        }
    }
}

#[cfg(feature = "mysql")]
backend_tests!(mysql, diesel::MysqlConnection);

/// What schema.rs would say of this file's migrations.
mod declared {
    diesel::table! {
        users (id) {
            id -> Integer,
            name -> Text,
            email -> Nullable<Text>,
        }
    }
}

// The standard tests of this file's migrations, in one line per backend.
mod sqlite_standard {
    use super::*;
    migrate::migration_tests!(
        SqliteConnection,
        migrator = everything,
        schema = [declared::users::table]
    );
}

#[cfg(feature = "postgres")]
mod postgres_standard {
    use super::*;
    migrate::migration_tests!(
        diesel::PgConnection,
        migrator = everything,
        schema = [declared::users::table]
    );
}

/// Every script of this file: its package version (0.1.0) is below them.
fn everything() -> Migrator {
    Migrator::new("1.1.0")
}

#[test]
fn the_history_check_fails_when_a_script_fails_from_empty() {
    let broken = Migrator::new("1.0.0")
        .only_listed_scripts()
        .scripts([migrate::Script::sql(
            "1.0.0",
            "broken",
            "CREATE TABLE broken (;",
            None,
        )]);
    let mut db = TestDatabase::<SqliteConnection>::empty("testing::history_fails");
    let failure = migrate::testing::check_history(&broken, db.conn()).unwrap_err();
    assert!(
        failure.starts_with("the run from empty failed"),
        "{failure}"
    );
}

/// A database an earlier run left behind (its process is gone) is dropped
/// at the next process's first test: a child process runs one test here.
#[test]
fn the_leftovers_of_a_dead_process_go_at_the_next_start() {
    let root = std::env::temp_dir().join("migrate-tests");
    std::fs::create_dir_all(&root).unwrap();
    // No process has that pid: /proc stops far below it.
    let leftover = root.join("mt_4000000000_0_left_behind.sqlite");
    std::fs::write(&leftover, b"").unwrap();
    // A database of a live process (this one) stays.
    let live = root.join(format!(
        "mt_{}_999999_still_used.sqlite",
        std::process::id()
    ));
    std::fs::write(&live, b"").unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::a_test_gets_every_migration_of_the_build",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !leftover.exists(),
        "the leftover of a dead process is still there"
    );
    assert!(live.exists(), "a live process's database was dropped");
    std::fs::remove_file(live).unwrap();
}
