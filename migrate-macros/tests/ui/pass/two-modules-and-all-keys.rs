use migrate_core::{BoxError, MigrationScript};
use migrate_macros::migration_script;

pub struct Conn(Vec<&'static str>);

mod users {
    use super::*;

    #[migration_script(version = "1.0.0", description = "create users")]
    pub struct CreateUsers;

    impl MigrationScript for CreateUsers {
        type Connection = Conn;
        const REVERSIBLE: bool = true;
        fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
            conn.0.push("create users");
            Ok(())
        }
        fn down(&self, conn: &mut Conn) -> Result<(), BoxError> {
            conn.0.push("drop users");
            Ok(())
        }
    }
}

mod orders {
    use super::*;

    #[migration_script(
        version = "1.0.10",
        name = "index orders",
        description = "build the index without locking",
        transaction = false,
    )]
    pub struct IndexOrders {}

    impl MigrationScript for IndexOrders {
        type Connection = Conn;
        fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
            conn.0.push("create index concurrently");
            Ok(())
        }
    }

    #[migration_script(version = "1.0.9")]
    pub struct Tuple();

    impl MigrationScript for Tuple {
        type Connection = Conn;
        fn up(&self, _: &mut Conn) -> Result<(), BoxError> {
            Ok(())
        }
    }
}

fn main() {
    let registry = migrate_core::registered().unwrap();
    let seen: Vec<(String, &str, Option<&str>, bool, bool)> = registry
        .iter()
        .map(|e| {
            let s = e.script;
            (e.version.to_string(), s.name(), s.description(), s.transactional(), s.reversible())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("1.0.0".to_string(), "CreateUsers", Some("create users"), true, true),
            ("1.0.9".to_string(), "Tuple", None, true, false),
            ("1.0.10".to_string(), "index orders", Some("build the index without locking"), false, false),
        ]
    );
    let mut conn = Conn(Vec::new());
    for e in registry.iter() {
        e.script.run_up(&mut conn).unwrap();
    }
    assert_eq!(conn.0, ["create users", "create index concurrently"]);
    assert!(registry.iter().next().unwrap().script.location().ends_with(".rs:10"), "{}", registry.iter().next().unwrap().script.location());
}
