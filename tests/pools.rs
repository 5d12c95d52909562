//! An r2d2 pool's connection, as `pool.get()` returns it, goes to every
//! entry point as it is (feature `r2d2`).
#![cfg(feature = "r2d2")]

use diesel::SqliteConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use migrate::{Migrator, Script};

fn migrator() -> Migrator {
    Migrator::new("1.0.0")
        .only_listed_scripts()
        .scripts([Script::sql(
            "1.0.0",
            "create_items",
            "CREATE TABLE items (id INTEGER PRIMARY KEY);",
            Some("DROP TABLE items;"),
        )])
}

#[test]
fn a_pooled_connection_is_taken_as_it_is() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("pool.db");
    let pool = Pool::builder()
        .max_size(2)
        .build(ConnectionManager::<SqliteConnection>::new(
            path.to_string_lossy(),
        ))?;
    let migrator = migrator();
    assert_eq!(migrator.plan(&mut pool.get()?)?.plan.steps.len(), 1);
    let report = migrator.run(&mut pool.get()?)?;
    assert_eq!(report.steps.len(), 1);
    // Another connection of the pool sees it settled.
    assert!(migrator.run(&mut pool.get()?)?.steps.is_empty());
    let status = migrator.status(&mut pool.get()?)?;
    assert_eq!(
        status.database_version.map(|v| v.to_string()).as_deref(),
        Some("1.0.0")
    );
    let reverted = migrator.run_to(&mut pool.get()?, Some(migrate::Target::DownSteps(1)))?;
    assert_eq!(reverted.to, None);
    Ok(())
}
