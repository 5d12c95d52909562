//! Test databases on PostgreSQL: `CREATE DATABASE … TEMPLATE` of a
//! template database per migration set.

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, sql_query};

use super::admin::{connect, run, with_database};
use super::{Server, TestConnection, gone};

#[diagnostic::do_not_recommend]
impl TestConnection for PgConnection {
    type Server = Postgres;
}

/// The variable that names the PostgreSQL test server.
const VAR: &str = "MIGRATE_TEST_POSTGRES_URL";

/// The process's admin connection to the PostgreSQL test server.
#[doc(hidden)]
pub struct Postgres {
    admin_url: String,
    admin: PgConnection,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn exists(conn: &mut PgConnection, name: &str) -> Result<bool, String> {
    let rows: Vec<Name> =
        sql_query("SELECT datname::text AS name FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(conn)
            .map_err(|e| e.to_string())?;
    Ok(!rows.is_empty())
}

impl Server<PgConnection> for Postgres {
    fn connect() -> Result<Postgres, String> {
        let (admin_url, admin) = connect(
            VAR,
            "PostgreSQL",
            "postgres://postgres@localhost:5432/postgres",
        )?;
        Ok(Postgres { admin_url, admin })
    }

    fn clean(&mut self) {
        let Ok(names) =
            sql_query("SELECT datname::text AS name FROM pg_database WHERE datname LIKE 'mt\\_%'")
                .load::<Name>(&mut self.admin)
        else {
            return;
        };
        for Name { name } in names {
            if gone(&name) {
                // Without FORCE: a database someone uses is not a leftover.
                let _ = run(
                    &mut self.admin,
                    &format!("DROP DATABASE IF EXISTS \"{name}\""),
                );
            }
        }
    }

    fn template(
        &mut self,
        key: &str,
        build: &dyn Fn(&mut PgConnection) -> Result<(), String>,
    ) -> Result<(), String> {
        let template = format!("migrate_tpl_{key}");
        if exists(&mut self.admin, &template)? {
            return Ok(());
        }
        // One builder at a time across processes; the others wait, then
        // find it made.
        let lock = i64::from_str_radix(&key[..15], 16).map_err(|e| e.to_string())?;
        run(&mut self.admin, &format!("SELECT pg_advisory_lock({lock})"))?;
        let built = self.build(&template, build);
        run(
            &mut self.admin,
            &format!("SELECT pg_advisory_unlock({lock})"),
        )?;
        built
    }

    fn create(
        &mut self,
        key: &str,
        name: &str,
        _build: &dyn Fn(&mut PgConnection) -> Result<(), String>,
    ) -> Result<(PgConnection, String), String> {
        // The server's default strategy: on PostgreSQL 15, `FILE_COPY` made
        // one copy quicker on a quiet server (about 32 against 50 ms) but a
        // suite slower, as each copy forces two checkpoints (200 tests on 2
        // threads: 108 s against 58 s; benches/testing.rs).
        run(
            &mut self.admin,
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"migrate_tpl_{key}\""),
        )?;
        let url = with_database(&self.admin_url, name)?;
        let conn =
            PgConnection::establish(&url).map_err(|e| format!("cannot connect to {name}: {e}"))?;
        Ok((conn, name.to_owned()))
    }

    fn url(&self, place: &str) -> Result<String, String> {
        with_database(&self.admin_url, place)
    }

    fn drop_database(&mut self, place: &str) -> Result<(), String> {
        run(
            &mut self.admin,
            &format!("DROP DATABASE IF EXISTS \"{place}\" WITH (FORCE)"),
        )
    }
}

impl Postgres {
    /// Builds the template under a temporary name and renames it when
    /// complete: a template exists whole, or not at all.
    fn build(
        &mut self,
        template: &str,
        build: &dyn Fn(&mut PgConnection) -> Result<(), String>,
    ) -> Result<(), String> {
        if exists(&mut self.admin, template)? {
            return Ok(());
        }
        let building = format!("{template}_building");
        run(
            &mut self.admin,
            &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
        )?;
        run(&mut self.admin, &format!("CREATE DATABASE \"{building}\""))?;
        let mut conn = PgConnection::establish(&with_database(&self.admin_url, &building)?)
            .map_err(|e| format!("cannot connect to {building}: {e}"))?;
        let built = build(&mut conn);
        drop(conn);
        if let Err(e) = built {
            let _ = run(
                &mut self.admin,
                &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
            );
            return Err(e);
        }
        run(
            &mut self.admin,
            &format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
        )?;
        // Nobody connects to a template by mistake; that would also stop
        // `CREATE DATABASE … TEMPLATE` from copying it.
        run(
            &mut self.admin,
            &format!("ALTER DATABASE \"{template}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
        )
    }
}
