//! Prints the registered scripts and the plan for an application version,
//! without touching a database (the diesel executor comes next).
//!
//! ```text
//! cargo run --example plan                          # app version = this package's, empty database
//! cargo run --example plan -- 1.0.1 --applied 1.0.0
//! cargo run --example plan -- 1.0.0 --applied 1.0.0,1.0.1,1.1.0   # the database is ahead: start-up leaves it
//! cargo run --example plan -- 1.0.0 --applied 1.0.0,1.0.1,1.1.0 --downgrade   # an authorized downgrade
//! APPLICATION_VERSION=1.1.0 cargo run --example plan
//! ```

use std::process::ExitCode;

use migrate::plan::AppliedScript;
use migrate::plan::PlanOptions;
use migrate::{BoxError, MigrationScript, Target, migration_script};

/// Stands in for a database connection: records the statements it is given.
#[derive(Default)]
pub struct Journal(Vec<String>);

/// Creates the users table.
#[migration_script(version = "1.0.0", description = "create users")]
pub struct CreateUsers;

impl MigrationScript for CreateUsers {
    type Connection = Journal;
    const REVERSIBLE: bool = true;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT)".into(),
        );
        Ok(())
    }
    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0.push("DROP TABLE users".into());
        Ok(())
    }
}

/// Adds `full_name`, filled from first and last name.
#[migration_script(version = "1.0.1", description = "add full name to users")]
pub struct AddUserFullName;

impl MigrationScript for AddUserFullName {
    type Connection = Journal;
    const REVERSIBLE: bool = true;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0
            .push("ALTER TABLE users ADD COLUMN full_name TEXT".into());
        Ok(())
    }
    fn down(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0
            .push("ALTER TABLE users DROP COLUMN full_name".into());
        Ok(())
    }
}

/// Backfills data; there is no way back.
#[migration_script(version = "1.1.0", description = "normalise names")]
pub struct NormaliseNames;

impl MigrationScript for NormaliseNames {
    type Connection = Journal;
    fn up(&self, conn: &mut Journal) -> Result<(), BoxError> {
        conn.0
            .push("UPDATE users SET full_name = trim(full_name)".into());
        Ok(())
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (mut configured, mut applied, mut skip_irreversible, mut downgrade) =
        (None, Vec::new(), false, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--applied" => {
                let list = args
                    .next()
                    .ok_or("--applied needs a comma-separated list of versions")?;
                for v in list.split(',').filter(|v| !v.is_empty()) {
                    applied.push(AppliedScript::new(v.parse()?, ""));
                }
            }
            "--skip-irreversible" => skip_irreversible = true,
            "--downgrade" => downgrade = true,
            v if configured.is_none() && !v.starts_with('-') => configured = Some(v.to_owned()),
            other => return Err(format!("unexpected argument `{other}`").into()),
        }
    }

    let app =
        migrate::version::resolve_app_version(configured.as_deref(), migrate::package_version!())?;
    let registry = migrate::registry::registered()?;
    registry.check_connection::<Journal>()?;

    println!("registered scripts ({}):", registry.len());
    for e in registry.iter() {
        let s = e.script;
        println!(
            "  {:<8} {:<16} {:<13} {:<14} {}",
            e.version,
            s.name(),
            if s.reversible() {
                "reversible"
            } else {
                "irreversible"
            },
            if s.transactional() {
                "transactional"
            } else {
                "no transaction"
            },
            s.description().unwrap_or("")
        );
    }
    println!("application version: {} (from {})", app.version, app.source);

    let known = registry.known();
    for a in &mut applied {
        a.name = registry
            .get(&a.version)
            .map_or("(unknown to this build)", |s| s.name())
            .to_owned();
    }
    let options = PlanOptions {
        skip_irreversible,
        ..PlanOptions::default()
    };
    // Start-up goes up to the application version and reverts nothing,
    // unless a downgrade to exactly that version is authorized.
    let target = if downgrade {
        Target::Version(app.version)
    } else {
        Target::UpTo(app.version)
    };
    let plan = migrate::plan::plan(&target, &applied, &known, options)?;
    println!("plan: {plan}");

    // Run the plan against the stand-in connection, to show what would run.
    let mut journal = Journal::default();
    for step in plan
        .steps
        .iter()
        .filter(|s| s.action == migrate::plan::Action::Run)
    {
        let script = step
            .known_index()
            .and_then(|i| registry.iter().nth(i))
            .map(|e| e.script)
            .ok_or("this build does not have the script")?;
        match step.direction {
            migrate::plan::Direction::Up => script.run_up(&mut journal)?,
            migrate::plan::Direction::Down => script.run_down(&mut journal)?,
        }
    }
    for statement in &journal.0 {
        println!("  would run: {statement}");
    }
    Ok(())
}
