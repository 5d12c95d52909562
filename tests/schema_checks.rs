//! The reversibility check (`Migrator::verify`) and the drift check against
//! diesel's `table!` (`migrate::check_schema!`), on SQLite and on the real
//! PostgreSQL server.

mod support;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use migrate::report::Reversibility;
use migrate::{Error, Migrator, Script};
use support::{TestDb, code};

const CREATE_ITEMS: &str =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);";

fn migrator(scripts: Vec<Script>) -> Migrator {
    Migrator::new("9.0.0")
        .only_listed_scripts()
        .scripts(scripts)
        .lock_timeout(Duration::from_secs(30))
}

/// `1.0.0` creates `items`, `1.0.1` indexes it with `index_down` as its
/// down, `1.0.2` (code, irreversible) adds a row.
fn scripts<D: TestDb>(index_down: &'static str) -> Vec<Script> {
    vec![
        Script::sql(
            "1.0.0",
            "create_items",
            CREATE_ITEMS,
            Some("DROP TABLE items;"),
        ),
        Script::sql(
            "1.0.1",
            "index_items",
            "CREATE INDEX items_name ON items (name);",
            Some(index_down),
        ),
        Script::new("1.0.2", seed::<D::Conn>()).with_name("seed"),
    ]
}

/// A code script without `down`.
struct Seed<C>(std::marker::PhantomData<fn() -> C>);

impl<C: migrate::backend::Backend + SimpleConnection> migrate::MigrationScript for Seed<C> {
    type Connection = C;
    fn up(&self, conn: &mut C) -> Result<(), migrate::BoxError> {
        conn.batch_execute("INSERT INTO items (id, name) VALUES (1, 'a')")?;
        Ok(())
    }
}

fn seed<C: migrate::backend::Backend + SimpleConnection>() -> &'static Seed<C> {
    Box::leak(Box::new(Seed(std::marker::PhantomData)))
}

fn a_faithful_down_passes_and_irreversible_scripts_are_reported_not_failed<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let report = migrator(scripts::<D>("DROP INDEX items_name;"))
        .verify(&mut db.connect(), false)
        .unwrap();
    let found: Vec<(String, Reversibility)> = report
        .scripts
        .iter()
        .map(|(v, _, r)| (v.to_string(), r.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("1.0.0".to_owned(), Reversibility::Reversible),
            ("1.0.1".to_owned(), Reversibility::Reversible),
            ("1.0.2".to_owned(), Reversibility::Irreversible),
        ]
    );
    assert!(
        report
            .to_string()
            .contains("1.0.2 `seed`: irreversible (no down): not checked"),
        "{report}"
    );
    // Strict mode fails on the irreversible script, naming it.
    let Some(db) = D::create() else { return };
    let err = migrator(scripts::<D>("DROP INDEX items_name;"))
        .verify(&mut db.connect(), true)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("1.0.2 `seed`: IRREVERSIBLE (no down), refused in strict mode"),
        "{err}"
    );
}

fn a_down_that_forgets_to_drop_an_index_is_caught_naming_the_script<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let err = migrator(scripts::<D>("SELECT 1;"))
        .verify(&mut db.connect(), false)
        .unwrap_err();
    let Error::NotReversible { report } = &err else {
        panic!("{err}")
    };
    assert_eq!(report.scripts.len(), 2, "stops at the broken script");
    let Reversibility::DownDiffers(lines) = &report.scripts[1].2 else {
        panic!("{report}")
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("+ index `items_name` on `items`: "),
        "{lines:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(
            "1.0.1 `index_items`: BROKEN: down did not restore the schema from before up"
        ),
        "{text}"
    );
    // A down that drops too much, or changes a column, is caught as well.
    let Some(db) = D::create() else { return };
    let err = migrator(vec![
        Script::sql("1.0.0", "create_items", CREATE_ITEMS, Some("DROP TABLE items;")),
        Script::sql(
            "1.0.1",
            "add_note",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
            Some("DROP TABLE notes; DROP TABLE items; CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(100));"),
        ),
    ])
    .verify(&mut db.connect(), false)
    .unwrap_err();
    assert!(err.to_string().contains("~ column `items.name`: "), "{err}");
}

fn the_check_refuses_a_database_that_was_already_migrated<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let m = migrator(vec![code::<D::Conn>(
        "1.0.0",
        CREATE_ITEMS,
        "DROP TABLE items",
    )]);
    m.run(&mut conn).unwrap();
    let err = m.verify(&mut conn, false).unwrap_err();
    assert!(matches!(err, Error::NeedsFreshDatabase { .. }), "{err}");
    // Tables without history are refused too: the check would migrate them.
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    conn.batch_execute("CREATE TABLE precious (id INTEGER PRIMARY KEY)")
        .unwrap();
    let err = m.verify(&mut conn, false).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "the reversibility check needs a fresh database, but this one holds the table(s) precious"
        ),
        "{err}"
    );
    let err = migrate::check_schema!(m, &mut conn, [declared::items::table]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the drift check needs a fresh database"),
        "{err}"
    );
}

/// What schema.rs says, three ways: as the migrations build it, with a
/// column no migration creates, and with a nullability the database does
/// not have.
mod declared {
    diesel::table! {
        items (id) {
            id -> Integer,
            name -> Text,
        }
    }
    diesel::table! {
        #[sql_name = "items"]
        items_with_note (id) {
            id -> Integer,
            name -> Text,
            note -> Nullable<Text>,
        }
    }
    diesel::table! {
        #[sql_name = "items"]
        items_nullable_name (id) {
            id -> Integer,
            name -> Nullable<Text>,
        }
    }
    diesel::table! {
        #[sql_name = "items"]
        items_wrong_type (id) {
            id -> Integer,
            name -> Integer,
        }
    }
    diesel::table! {
        tags (id) {
            id -> BigInt,
            item_id -> Integer,
            label -> Nullable<Text>,
        }
    }
}

/// `items` and `tags`, as `declared` says, from SQL and code migrations.
fn drift_scripts<D: TestDb>() -> Vec<Script> {
    vec![
        Script::sql(
            "1.0.0",
            "create_items",
            CREATE_ITEMS,
            Some("DROP TABLE items;"),
        ),
        code::<D::Conn>(
            "1.0.1",
            "CREATE TABLE tags (id BIGINT PRIMARY KEY, item_id INTEGER NOT NULL REFERENCES items (id), label TEXT)",
            "DROP TABLE tags",
        ),
    ]
}

fn a_schema_that_matches_schema_rs_passes<D: TestDb>() {
    let Some(db) = D::create() else { return };
    migrate::check_schema!(
        migrator(drift_scripts::<D>()),
        &mut db.connect(),
        [declared::items::table, declared::tags::table]
    )
    .unwrap();
}

fn a_column_only_in_schema_rs_a_nullability_and_a_type_mismatch_are_reported<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let err = migrate::check_schema!(
        migrator(drift_scripts::<D>()),
        &mut db.connect(),
        [declared::items_with_note::table, declared::tags::table]
    )
    .unwrap_err();
    let Error::SchemaDrift { lines } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        lines,
        &["column `items.note` is declared in schema.rs but no migration creates it"]
    );
    let Some(db) = D::create() else { return };
    let err = migrate::check_schema!(
        migrator(drift_scripts::<D>()),
        &mut db.connect(),
        [declared::items_nullable_name::table]
    )
    .unwrap_err();
    let Error::SchemaDrift { lines } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        lines,
        &[
            "column `items.name`: schema.rs says Nullable, the database says NOT NULL",
            "table `tags` exists in the database but not in schema.rs",
        ]
    );
    assert!(
        err.to_string()
            .starts_with("the migrations and schema.rs disagree (2 difference(s)):"),
        "{err}"
    );
    // A type that does not store what schema.rs says.
    let Some(db) = D::create() else { return };
    let err = migrate::check_schema!(
        migrator(drift_scripts::<D>()),
        &mut db.connect(),
        [declared::items_wrong_type::table, declared::tags::table]
    )
    .unwrap_err();
    let Error::SchemaDrift { lines } = &err else {
        panic!("{err}")
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0]
            .starts_with("column `items.name`: schema.rs says Integer, the database has varchar"),
        "{lines:?}"
    );
}

on_sqlite_and_postgres!(
    a_faithful_down_passes_and_irreversible_scripts_are_reported_not_failed,
    a_down_that_forgets_to_drop_an_index_is_caught_naming_the_script,
    the_check_refuses_a_database_that_was_already_migrated,
    a_schema_that_matches_schema_rs_passes,
    a_column_only_in_schema_rs_a_nullability_and_a_type_mismatch_are_reported,
);
