//! Test databases on MySQL and MariaDB, which cannot copy a database: a
//! new database gets the template's tables (`SHOW CREATE TABLE`, foreign
//! keys and `AUTO_INCREMENT` counters included) and their rows. A template
//! with what that does not copy (views, triggers, routines, events,
//! generated columns) is not copied: each test's database is migrated
//! instead, and the first such test says so.

use std::collections::HashMap;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, MysqlConnection, QueryableByName, RunQueryDsl, sql_query};

use super::admin::{connect, run, with_database};
use super::{Server, TestConnection, gone};

#[diagnostic::do_not_recommend]
impl TestConnection for MysqlConnection {
    type Server = Mysql;
}

/// The variable that names the MySQL test server.
const VAR: &str = "MIGRATE_TEST_MYSQL_URL";

/// The process's admin connection to the MySQL test server.
#[doc(hidden)]
pub struct Mysql {
    admin_url: String,
    admin: MysqlConnection,
    /// Per template: the SQL that copies it into a database named `{db}`,
    /// or `None` when it must be migrated instead.
    copies: HashMap<String, Option<String>>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct CreateTable {
    #[diesel(sql_type = Text, column_name = "Create Table")]
    sql: String,
}

fn names(conn: &mut MysqlConnection, sql: &str, bind: &str) -> Result<Vec<String>, String> {
    let rows: Vec<Name> = sql_query(sql)
        .bind::<Text, _>(bind)
        .load(conn)
        .map_err(|e| format!("{sql}: {e}"))?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

fn exists(conn: &mut MysqlConnection, database: &str) -> Result<bool, String> {
    Ok(!names(
        conn,
        "SELECT CAST(schema_name AS CHAR) AS name FROM information_schema.schemata WHERE schema_name = ?",
        database,
    )?
    .is_empty())
}

impl Server<MysqlConnection> for Mysql {
    fn connect() -> Result<Mysql, String> {
        let (admin_url, admin) =
            connect(VAR, "MySQL or MariaDB", "mysql://root@127.0.0.1:3306/mysql")?;
        Ok(Mysql {
            admin_url,
            admin,
            copies: HashMap::new(),
        })
    }

    fn clean(&mut self) {
        let Ok(leftovers) = names(
            &mut self.admin,
            "SELECT CAST(schema_name AS CHAR) AS name FROM information_schema.schemata WHERE schema_name LIKE ?",
            "mt\\_%",
        ) else {
            return;
        };
        for name in leftovers.into_iter().filter(|n| gone(n)) {
            let _ = run(
                &mut self.admin,
                &format!("DROP DATABASE IF EXISTS `{name}`"),
            );
        }
    }

    fn template(
        &mut self,
        key: &str,
        build: &dyn Fn(&mut MysqlConnection) -> Result<(), String>,
    ) -> Result<(), String> {
        let template = format!("migrate_tpl_{key}");
        // A template is complete once its marker exists: MySQL cannot
        // rename a database, so it is built under its final name.
        let done = format!("{template}_ok");
        if exists(&mut self.admin, &done)? {
            return Ok(());
        }
        let lock = format!("SELECT GET_LOCK('{template}', 600)");
        run(&mut self.admin, &lock)?;
        let built = (|| {
            if exists(&mut self.admin, &done)? {
                return Ok(());
            }
            run(
                &mut self.admin,
                &format!("DROP DATABASE IF EXISTS `{template}`"),
            )?;
            run(&mut self.admin, &format!("CREATE DATABASE `{template}`"))?;
            let mut conn = MysqlConnection::establish(&with_database(&self.admin_url, &template)?)
                .map_err(|e| format!("cannot connect to {template}: {e}"))?;
            build(&mut conn)?;
            drop(conn);
            run(&mut self.admin, &format!("CREATE DATABASE `{done}`"))
        })();
        run(
            &mut self.admin,
            &format!("SELECT RELEASE_LOCK('{template}')"),
        )?;
        built
    }

    fn create(
        &mut self,
        key: &str,
        name: &str,
        build: &dyn Fn(&mut MysqlConnection) -> Result<(), String>,
    ) -> Result<(MysqlConnection, String), String> {
        let template = format!("migrate_tpl_{key}");
        if !self.copies.contains_key(key) {
            let copy = self.copy_sql(&template)?;
            if copy.is_none() {
                eprintln!(
                    "#[migrate::test] {template} has views, triggers, routines, events or generated columns, which MySQL cannot copy: each test's database is migrated instead"
                );
            }
            self.copies.insert(key.to_owned(), copy);
        }
        let url = with_database(&self.admin_url, name)?;
        match &self.copies[key] {
            Some(copy) => {
                run(&mut self.admin, &copy.replace("{db}", name))?;
                let conn = MysqlConnection::establish(&url)
                    .map_err(|e| format!("cannot connect to {name}: {e}"))?;
                Ok((conn, name.to_owned()))
            }
            None => {
                run(&mut self.admin, &format!("CREATE DATABASE `{name}`"))?;
                let mut conn = MysqlConnection::establish(&url)
                    .map_err(|e| format!("cannot connect to {name}: {e}"))?;
                build(&mut conn)?;
                Ok((conn, name.to_owned()))
            }
        }
    }

    fn url(&self, place: &str) -> Result<String, String> {
        with_database(&self.admin_url, place)
    }

    fn drop_database(&mut self, place: &str) -> Result<(), String> {
        run(
            &mut self.admin,
            &format!("DROP DATABASE IF EXISTS `{place}`"),
        )
    }
}

impl Mysql {
    /// The SQL that copies `template` into `{db}`, or `None` when it holds
    /// what a table-by-table copy would miss.
    fn copy_sql(&mut self, template: &str) -> Result<Option<String>, String> {
        let uncopied = "SELECT \
             (SELECT COUNT(*) FROM information_schema.views WHERE table_schema = ?) + \
             (SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = ?) + \
             (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = ?) + \
             (SELECT COUNT(*) FROM information_schema.events WHERE event_schema = ?) + \
             (SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = ? AND extra LIKE '%GENERATED%') AS n";
        let mut query = sql_query(uncopied).into_boxed();
        for _ in 0..5 {
            query = query.bind::<Text, _>(template.to_owned());
        }
        let counts: Vec<Number> = query.load(&mut self.admin).map_err(|e| e.to_string())?;
        if counts.first().is_some_and(|c| c.n > 0) {
            return Ok(None);
        }
        let tables = names(
            &mut self.admin,
            "SELECT CAST(table_name AS CHAR) AS name FROM information_schema.tables \
             WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
            template,
        )?;
        let mut sql =
            "CREATE DATABASE `{db}`; USE `{db}`; SET FOREIGN_KEY_CHECKS = 0;\n".to_owned();
        for table in tables {
            let create: Vec<CreateTable> =
                sql_query(format!("SHOW CREATE TABLE `{template}`.`{table}`"))
                    .load(&mut self.admin)
                    .map_err(|e| e.to_string())?;
            let create = create
                .into_iter()
                .next()
                .ok_or("SHOW CREATE TABLE returned nothing")?;
            sql.push_str(&create.sql);
            sql.push_str(&format!(
                ";\nINSERT INTO `{table}` SELECT * FROM `{template}`.`{table}`;\n"
            ));
        }
        sql.push_str("SET FOREIGN_KEY_CHECKS = 1;");
        Ok(Some(sql))
    }
}
