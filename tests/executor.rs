//! The executor on real databases: every behaviour on SQLite and on the real
//! PostgreSQL and MariaDB/MySQL servers, each test with a fresh database.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::{InstrumentationEvent, SimpleConnection, TransactionManager};
use migrate::backend::Backend;
use migrate::backend::TableName;
use migrate::plan::Action;
use migrate::plan::Direction;
use migrate::plan::PlanError;
use migrate::report::Resolution;
use migrate::report::State;
use migrate::report::StepError;
use migrate::{Error, Migrator, Script, WhenAhead};
use support::{TestDb, code, failing, history, log, panicking, slow};

const CREATE_LOG: &str = "CREATE TABLE log (v TEXT NOT NULL);";

fn base() -> Script {
    Script::sql("1.0.0", "create_log", CREATE_LOG, Some("DROP TABLE log;"))
}

/// `1.0.0` (SQL) creates `log`; each code script inserts its version.
fn scripts<D: TestDb>() -> Vec<Script> {
    vec![
        base(),
        code::<D::Conn>(
            "1.0.1",
            "INSERT INTO log VALUES ('1.0.1')",
            "DELETE FROM log WHERE v = '1.0.1'",
        ),
        code::<D::Conn>(
            "1.0.2",
            "INSERT INTO log VALUES ('1.0.2')",
            "DELETE FROM log WHERE v = '1.0.2'",
        ),
        code::<D::Conn>(
            "1.0.10",
            "INSERT INTO log VALUES ('1.0.10')",
            "DELETE FROM log WHERE v = '1.0.10'",
        ),
        code::<D::Conn>(
            "1.1.0",
            "INSERT INTO log VALUES ('1.1.0')",
            "DELETE FROM log WHERE v = '1.1.0'",
        ),
        code::<D::Conn>(
            "2.0.0",
            "INSERT INTO log VALUES ('2.0.0')",
            "DELETE FROM log WHERE v = '2.0.0'",
        ),
    ]
}

fn migrator(app: &str, scripts: Vec<Script>) -> Migrator {
    Migrator::new("0.0.0")
        .only_listed_scripts()
        .app_version(app)
        .scripts(scripts)
        .lock_timeout(Duration::from_secs(30))
}

fn versions(report: &migrate::Report) -> Vec<String> {
    report
        .steps
        .iter()
        .map(|s| format!("{} {}", s.direction, s.version))
        .collect()
}

const T: &str = "migrate_history";

fn upgrade_from_empty_runs_every_script_up_to_the_app_version_in_semver_order<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let report = migrator("1.0.10", scripts::<D>()).run(&mut conn).unwrap();
    assert_eq!(
        versions(&report),
        ["up 1.0.0", "up 1.0.1", "up 1.0.2", "up 1.0.10"]
    );
    assert!(report.locked);
    assert_eq!(
        (report.from, report.to.unwrap().to_string()),
        (None, "1.0.10".to_owned())
    );
    assert_eq!(
        history::<D>(&mut conn, T),
        ["1.0.0:up", "1.0.1:up", "1.0.2:up", "1.0.10:up"]
    );
    assert_eq!(log::<D>(&mut conn), ["1.0.1", "1.0.10", "1.0.2"]); // sorted as text; 1.1.0 and 2.0.0 not run
    let changes = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT({0}, '') AS s FROM migrate_history ORDER BY {0}",
            D::CHANGE
        ),
    );
    assert_eq!(changes, ["1", "2", "3", "4"]);
}

fn a_second_run_with_the_same_version_is_a_no_op_that_takes_no_lock<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("1.0.2", scripts::<D>()).run(&mut conn).unwrap();
    let again = migrator("1.0.2", scripts::<D>()).run(&mut conn).unwrap();
    assert!(again.steps.is_empty() && !again.locked, "{again}");
    assert_eq!(history::<D>(&mut conn, T).len(), 3);
}

fn upgrades_in_steps_across_application_versions<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let r1 = migrator("1.0.1", scripts::<D>()).run(&mut conn).unwrap();
    let r2 = migrator("1.1.0", scripts::<D>()).run(&mut conn).unwrap();
    let r3 = migrator("2.0.0", scripts::<D>()).run(&mut conn).unwrap();
    assert_eq!(versions(&r1), ["up 1.0.0", "up 1.0.1"]);
    assert_eq!(versions(&r2), ["up 1.0.2", "up 1.0.10", "up 1.1.0"]);
    assert_eq!(versions(&r3), ["up 2.0.0"]);
    assert_eq!(r3.from.unwrap().to_string(), "1.1.0");
    assert_eq!(log::<D>(&mut conn).len(), 5);
}

fn an_older_application_leaves_a_newer_database_alone_and_names_what_is_ahead<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("2.0.0", scripts::<D>()).run(&mut conn).unwrap();
    let before = history::<D>(&mut conn, T);
    let old = migrator("1.0.1", scripts::<D>()).run(&mut conn).unwrap();
    assert!(old.steps.is_empty() && !old.locked, "{old}");
    let ahead: Vec<String> = old.ahead.iter().map(|a| a.version.to_string()).collect();
    assert_eq!(ahead, ["2.0.0", "1.1.0", "1.0.10", "1.0.2"]);
    assert_eq!(old.from.as_ref().unwrap().to_string(), "2.0.0");
    assert!(
        old.summary()
            .contains("the database is ahead, left in place: 2.0.0 `Exec`, 1.1.0 `Exec`"),
        "{}",
        old.summary()
    );
    assert_eq!(history::<D>(&mut conn, T), before);
    assert_eq!(log::<D>(&mut conn).len(), 5);
    // The refuse policy fails before touching anything.
    let err = migrator("1.0.1", scripts::<D>())
        .when_ahead(WhenAhead::Refuse)
        .run(&mut conn)
        .unwrap_err();
    assert!(matches!(err, Error::DatabaseAhead { .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            "the database is ahead of the application version 1.0.1 (the configured application version): 2.0.0 `Exec`, 1.1.0 `Exec`, 1.0.10 `Exec`, 1.0.2 `Exec` are applied above it; the policy for a database ahead is to refuse, so nothing was changed"
        ),
        "{err}"
    );
    assert_eq!(history::<D>(&mut conn, T), before);
}

fn an_authorized_downgrade_runs_down_in_descending_order_once<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("2.0.0", scripts::<D>()).run(&mut conn).unwrap();
    // An authorization for another version does not apply.
    let other = migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.0")
        .run(&mut conn)
        .unwrap();
    assert!(other.steps.is_empty() && other.authorization.is_none());
    let down = migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.1")
        .run(&mut conn)
        .unwrap();
    assert_eq!(
        versions(&down),
        ["down 2.0.0", "down 1.1.0", "down 1.0.10", "down 1.0.2"]
    );
    assert_eq!(
        down.authorization.as_deref(),
        Some("authorize_downgrade_to = \"1.0.1\"")
    );
    assert_eq!(down.to.as_ref().unwrap().to_string(), "1.0.1");
    assert_eq!(log::<D>(&mut conn), ["1.0.1"]);
    let rows = history::<D>(&mut conn, T);
    assert_eq!(
        &rows[6..],
        ["2.0.0:down", "1.1.0:down", "1.0.10:down", "1.0.2:down"]
    );
    let spent = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, '=', authorized_by) AS s FROM {T} WHERE authorized_by IS NOT NULL ORDER BY {}",
            D::CHANGE
        ),
    );
    assert_eq!(
        spent,
        ["2.0.0=1.0.1", "1.1.0=1.0.1", "1.0.10=1.0.1", "1.0.2=1.0.1"]
    );
    // The newer release comes back; the same authorization is spent, so
    // the older one no longer reverts anything.
    migrator("2.0.0", scripts::<D>()).run(&mut conn).unwrap();
    let again = migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.1")
        .run(&mut conn)
        .unwrap();
    assert!(again.steps.is_empty() && again.ahead.len() == 4, "{again}");
    // A new name for the same version is a new authorization.
    let renamed = migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.1+2")
        .run(&mut conn)
        .unwrap();
    assert_eq!(renamed.steps.len(), 4, "{renamed}");
    // And up again.
    let up = migrator("1.0.2", scripts::<D>()).run(&mut conn).unwrap();
    assert_eq!(versions(&up), ["up 1.0.2"]);
}

fn a_downgrade_that_fails_part_way_resumes_under_the_same_authorization<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let with_down = |down: &'static str| {
        vec![
            base(),
            code::<D::Conn>("1.0.1", "INSERT INTO log VALUES ('1.0.1')", down),
            code::<D::Conn>(
                "1.0.2",
                "INSERT INTO log VALUES ('1.0.2')",
                "DELETE FROM log WHERE v = '1.0.2'",
            ),
        ]
    };
    let broken = with_down("DELETE FROM no_such_table");
    let fixed = with_down("DELETE FROM log WHERE v = '1.0.1'");
    migrator("1.0.2", fixed.clone()).run(&mut conn).unwrap();
    // 1.0.2 is reverted, then 1.0.1's down fails.
    let err = migrator("1.0.0", broken)
        .authorize_downgrade_to("1.0.0")
        .run(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("1.0.1"), "{err}");
    assert_eq!(log::<D>(&mut conn), ["1.0.1"]);
    // Not spent: a build with a working down resumes the same downgrade.
    let resumed = migrator("1.0.0", fixed.clone())
        .authorize_downgrade_to("1.0.0")
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&resumed), ["down 1.0.1"]);
    assert!(log::<D>(&mut conn).is_empty());
    // Once the database moved up again, it is spent.
    migrator("1.0.2", fixed.clone()).run(&mut conn).unwrap();
    let again = migrator("1.0.0", fixed)
        .authorize_downgrade_to("1.0.0")
        .run(&mut conn)
        .unwrap();
    assert!(again.steps.is_empty() && again.ahead.len() == 2, "{again}");
}

fn an_authorization_that_reverts_nothing_is_not_spent<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // Authorized for 1.0.1 while the database is behind: an upgrade only.
    let up = migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.1")
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&up), ["up 1.0.0", "up 1.0.1"]);
    assert_eq!(up.authorization, None);
    // So it still allows one downgrade later.
    migrator("1.0.2", scripts::<D>()).run(&mut conn).unwrap();
    let down = migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.1")
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&down), ["down 1.0.2"]);
}

fn a_recorded_down_runs_outside_a_transaction_when_its_migration_did<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // 1.0.1's down must run outside a transaction (the database refuses
    // it inside one); an older build, which does not have 1.0.1, runs it
    // from the history.
    let outside = Script::sql(
        "1.0.1",
        "outside",
        "INSERT INTO log VALUES ('1.0.1');",
        Some(D::OUTSIDE_TRANSACTION_SQL),
    )
    .with_transaction(false);
    migrator("1.0.1", vec![base(), outside])
        .run(&mut conn)
        .unwrap();
    let down = migrator("1.0.0", vec![base()])
        .authorize_downgrade_to("1.0.0")
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&down), ["down 1.0.1"]);
    assert_eq!(
        history::<D>(&mut conn, T),
        ["1.0.0:up", "1.0.1:up", "1.0.1:down"]
    );
}

fn the_refuse_policy_touches_nothing_even_with_work_pending<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // 2.0.0 was applied by a newer build; 1.0.1 is pending below it.
    let newer = code::<D::Conn>("2.0.0", "INSERT INTO log VALUES ('2.0.0')", "");
    migrator("2.0.0", vec![base(), newer])
        .run(&mut conn)
        .unwrap();
    // The state row too: refusing must not even forget it.
    let state =
        |conn: &mut D::Conn| D::strings(conn, &format!("SELECT fingerprint AS s FROM {STATE}"));
    let before = (
        history::<D>(&mut conn, T),
        D::schema(&mut conn),
        state(&mut conn),
    );
    assert_eq!(before.2.len(), 1);
    let older = vec![
        base(),
        code::<D::Conn>("1.0.1", "INSERT INTO log VALUES ('1.0.1')", ""),
    ];
    let err = migrator("1.0.1", older)
        .allow_out_of_order(true)
        .when_ahead(WhenAhead::Refuse)
        .run(&mut conn)
        .unwrap_err();
    assert!(matches!(err, Error::DatabaseAhead { .. }), "{err}");
    // This build cannot revert 2.0.0, and the message does not pretend it
    // can.
    assert!(
        err.to_string()
            .contains("to revert, run `down --to 1.0.1` with a build that can: this one cannot"),
        "{err}"
    );
    assert_eq!(
        (
            history::<D>(&mut conn, T),
            D::schema(&mut conn),
            state(&mut conn)
        ),
        before
    );
}

fn a_script_added_out_of_order_is_refused_then_allowed<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let all = scripts::<D>();
    let without_101: Vec<Script> = all
        .iter()
        .filter(|s| s.version() != "1.0.1")
        .copied()
        .collect();
    migrator("1.0.2", without_101).run(&mut conn).unwrap();
    let before = history::<D>(&mut conn, T);
    let err = migrator("1.0.2", all.clone()).run(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::Plan(PlanError::OutOfOrder { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("1.0.1 `Exec`"), "{err}");
    assert_eq!(history::<D>(&mut conn, T), before);
    let report = migrator("1.0.2", all)
        .allow_out_of_order(true)
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&report), ["up 1.0.1"]);
}

fn a_downgrade_across_a_script_without_down_is_refused_then_skipped_on_request<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let mut list = scripts::<D>();
    list.push(Script::sql(
        "1.0.5",
        "backfill",
        "INSERT INTO log VALUES ('1.0.5');",
        None,
    ));
    migrator("1.0.5", list.clone()).run(&mut conn).unwrap();
    let before = history::<D>(&mut conn, T);
    let err = migrator("1.0.1", list.clone())
        .authorize_downgrade_to("1.0.1")
        .run(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string().contains("no `down`: 1.0.5 `backfill`"),
        "{err}"
    );
    assert_eq!(history::<D>(&mut conn, T), before);
    let report = migrator("1.0.1", list.clone())
        .authorize_downgrade_to("1.0.1")
        .skip_irreversible(true)
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&report), ["down 1.0.5", "down 1.0.2"]);
    assert_eq!(report.steps[0].action, Action::RecordOnly);
    let executed = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, ':', CASE WHEN executed THEN 'ran' ELSE 'recorded' END) AS s FROM migrate_history WHERE direction = 'down' ORDER BY {}",
            D::CHANGE
        ),
    );
    assert_eq!(executed, ["1.0.5:recorded", "1.0.2:ran"]);
    assert_eq!(log::<D>(&mut conn), ["1.0.1", "1.0.5"]); // nothing undid 1.0.5, as warned
    // Its changes stayed, so going up again records it without running it.
    let up = migrator("1.0.5", list).run(&mut conn).unwrap();
    assert_eq!(versions(&up), ["up 1.0.2", "up 1.0.5"]);
    assert_eq!(
        (up.steps[0].action, up.steps[1].action),
        (Action::Run, Action::RecordOnly)
    );
    assert_eq!(log::<D>(&mut conn), ["1.0.1", "1.0.2", "1.0.5"]);
}

fn sql_that_ends_its_transaction_is_refused_before_anything_runs<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    for (up, down, line, statement) in [
        (
            "CREATE TABLE a (x INT);\nCOMMIT;\nCREATE TABLE b (x INT);",
            None,
            2,
            "COMMIT",
        ),
        (
            "ROLLBACK;\nCREATE TABLE leaked (x INT);\nCOMMIT;",
            None,
            1,
            "ROLLBACK",
        ),
        // The common file shape, in a down.
        (
            "CREATE TABLE a (x INT);",
            Some("BEGIN;\nDROP TABLE a;\nCOMMIT;"),
            1,
            "BEGIN",
        ),
    ] {
        let err = migrator(
            "1.0.1",
            vec![base(), Script::sql("1.0.1", "ends", up, down)],
        )
        .run(&mut conn)
        .unwrap_err();
        let Error::Registry(migrate::registry::RegistryError::TransactionControl {
            line: at,
            statement: found,
            ..
        }) = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*at, found.as_str()), (line, statement), "{err}");
        assert!(
            err.to_string().contains(
                "would end the transaction the migration runs in, so part of it could be kept without its history row"
            ),
            "{err}"
        );
        assert_eq!(D::tables(&mut conn), Vec::<String>::new());
    }
    // Outside a transaction, a migration manages its own.
    let outside = Script::sql("1.0.1", "own", "CREATE TABLE a (x INT);\nCOMMIT;", None)
        .with_transaction(false);
    assert!(migrate::registry::Registry::new([base(), outside]).is_ok());
}

/// Text that only one dialect reads as ending the transaction (a
/// backslash before a quote: an escape in MySQL, the end of the string in
/// PostgreSQL and SQLite, where a real `COMMIT` then follows) passes the
/// registry, runs on MySQL as MySQL reads it, and is refused before
/// anything runs where the server would commit. A MySQL `#` comment after
/// the last `;` needs no `;` of ours after it.
fn sql_that_one_dialect_reads_as_ending_its_transaction_is_refused_only_there<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let escaped = Script::sql(
        "1.0.1",
        "escaped",
        "INSERT INTO log VALUES ('it\\'s; commit later');",
        None,
    );
    let m = migrator("1.0.1", vec![base(), escaped]);
    if D::NAME == "mysql" {
        m.run(&mut conn).unwrap();
        assert_eq!(log::<D>(&mut conn), ["it's; commit later"]);
        let hash = Script::sql(
            "1.0.2",
            "hash",
            "INSERT INTO log VALUES ('1.0.2');\n# done",
            None,
        );
        migrator("1.0.2", vec![base(), escaped, hash])
            .run(&mut conn)
            .unwrap();
        assert_eq!(log::<D>(&mut conn), ["1.0.2", "it's; commit later"]);
    } else {
        migrator("1.0.0", vec![base()]).run(&mut conn).unwrap();
        let err = m.run(&mut conn).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                Error::Registry(migrate::registry::RegistryError::TransactionControl {
                    line: 1,
                    ..
                })
            ) && msg.contains(&format!(
                "has `COMMIT LATER (as {} reads it)`",
                D::Conn::NAME
            )) && msg.contains("would end the transaction the migration runs in"),
            "{msg}"
        );
        // The dry run refuses it too; nothing ran.
        assert!(m.plan(&mut conn).is_err());
        assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up"]);
        assert!(log::<D>(&mut conn).is_empty());
    }
}

fn code_that_ends_its_transaction_leaves_its_step_marked_in_progress<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let ends = |up: &'static str| {
        migrator(
            "1.0.1",
            vec![base(), code::<D::Conn>("1.0.1", up, "").with_name("ends")],
        )
    };
    // It ran to its end, but not in one transaction, and its history row
    // would have been written outside it.
    let m = ends("CREATE TABLE a (x INT);\nCOMMIT;\nCREATE TABLE b (x INT);");
    let done = m.run(&mut conn);
    if D::Conn::TRANSACTIONAL_DDL {
        let err = done.unwrap_err();
        assert!(
            matches!(
                err,
                Error::StepFailed {
                    dirty: true,
                    source: StepError::EndedItsTransaction,
                    ..
                }
            ) && err
                .to_string()
                .contains("it ended the transaction it ran in")
                && err.to_string().contains("HALF-APPLIED"),
            "{err}"
        );
        assert!(matches!(m.run(&mut conn).unwrap_err(), Error::Dirty { .. }));
        m.resolve(&mut conn, "1.0.1", Resolution::Completed)
            .unwrap();
    } else {
        // MySQL marks every step first and commits DDL as it goes anyway:
        // it ran whole, and is recorded.
        done.unwrap();
    }
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up", "1.0.1:up"]);
    let tables = D::tables(&mut conn);
    assert!(tables.contains(&"a".to_owned()) && tables.contains(&"b".to_owned()));

    // It failed after its COMMIT: what ran before is kept, on every backend.
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let m = ends("CREATE TABLE a2 (x INT);\nCOMMIT;\nINSERT INTO no_such_table VALUES (1);");
    let err = m.run(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::StepFailed { dirty: true, .. }),
        "{err}"
    );
    assert!(D::tables(&mut conn).contains(&"a2".to_owned()));
    assert!(matches!(m.run(&mut conn).unwrap_err(), Error::Dirty { .. }));
    conn.batch_execute("DROP TABLE a2").unwrap();
    m.resolve(&mut conn, "1.0.1", Resolution::RolledBack)
        .unwrap();
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up"]);
}

/// In atomic mode every step runs in the one transaction. Code that ends
/// it, even one that then succeeds, leaves the steps before it kept (by a
/// `COMMIT`) or undone (by a `ROLLBACK`): only the user can tell, so each
/// step that ran is marked in progress, and each is resolved in turn.
fn atomic_code_that_ends_the_transaction_marks_every_step_it_ran<D: TestDb>() {
    if !D::Conn::TRANSACTIONAL_DDL {
        return; // Atomic mode is refused up front (atomic_mode_rolls_back_the_whole_plan).
    }
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("1.0.0", vec![base()]).run(&mut conn).unwrap();
    let list = vec![
        base(),
        Script::sql("1.0.1", "a", "CREATE TABLE a (x INT);", None),
        code::<D::Conn>("1.0.2", "CREATE TABLE b (x INT);\nCOMMIT;", "").with_name("commits"),
        Script::sql("1.0.3", "c", "CREATE TABLE c (x INT);", None),
    ];
    let m = migrator("1.0.3", list).atomic(true);
    let err = m.run(&mut conn).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::StepFailed {
                dirty: true,
                source: StepError::EndedItsTransaction,
                version,
                ..
            } if version.to_string() == "1.0.2"
        ),
        "{err}"
    );
    // Nothing after it ran; nothing is recorded as applied.
    let tables = D::tables(&mut conn);
    assert!(!tables.contains(&"c".to_owned()), "{tables:?}");
    let rows = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, CASE WHEN dirty THEN ' in progress' ELSE '' END) AS s FROM {T} ORDER BY {}",
            D::CHANGE
        ),
    );
    assert_eq!(rows, ["1.0.0", "1.0.1 in progress", "1.0.2 in progress"]);
    let refused = m.run(&mut conn).unwrap_err();
    let msg = refused.to_string();
    assert!(
        matches!(&refused, Error::Dirty { version, others, .. } if version == "1.0.1" && others.len() == 1)
            && msg.contains("Also marked in progress, to resolve the same way: 1.0.2 `commits`"),
        "{msg}"
    );
    // The COMMIT kept both: resolved one by one, the run goes on.
    let nothing = m
        .resolve(&mut conn, "1.0.3", Resolution::Completed)
        .unwrap_err();
    assert!(
        nothing
            .to_string()
            .contains("the steps in progress are 1.0.1 `a`, 1.0.2 `commits`"),
        "{nothing}"
    );
    m.resolve(&mut conn, "1.0.1", Resolution::Completed)
        .unwrap();
    assert!(matches!(m.run(&mut conn).unwrap_err(), Error::Dirty { .. }));
    m.resolve(&mut conn, "1.0.2", Resolution::Completed)
        .unwrap();
    let report = m.run(&mut conn).unwrap();
    assert_eq!(versions(&report), ["up 1.0.3"]);
    assert_eq!(
        history::<D>(&mut conn, T),
        ["1.0.0:up", "1.0.1:up", "1.0.2:up", "1.0.3:up"]
    );
}

fn a_byte_order_mark_before_the_sql_is_not_sent_to_the_server<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let bom = Script::sql(
        "1.0.1",
        "bom",
        "\u{feff}INSERT INTO log VALUES ('1.0.1');",
        Some("\u{feff}DELETE FROM log;"),
    );
    assert_eq!(
        bom.checksum(),
        Some(migrate::registry::sql_checksum("INSERT INTO log VALUES ('1.0.1');").as_str())
    );
    migrator("1.0.1", vec![base(), bom]).run(&mut conn).unwrap();
    assert_eq!(log::<D>(&mut conn), ["1.0.1"]);
    migrator("1.0.0", vec![base(), bom])
        .run_to(
            &mut conn,
            Some(migrate::Target::DownTo("1.0.0".parse().unwrap())),
        )
        .unwrap();
    assert!(log::<D>(&mut conn).is_empty());
}

/// A step that changes the session (PostgreSQL's search_path, pg_dump's
/// `set_config('search_path', '', false)`; MySQL's current database) does
/// not change where the next step's tables land, nor where the history
/// row goes, in one run or in several.
fn a_steps_session_settings_reach_neither_the_next_step_nor_the_history<D: TestDb>() {
    if D::NAME == "sqlite" {
        return; // SQLite has no such session state.
    }
    let elsewhere = format!("elsewhere_{}", std::process::id());
    let (moves, dump) = if D::NAME == "postgres" {
        (
            format!("CREATE SCHEMA {elsewhere};\nSET search_path = {elsewhere};"),
            "SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.dumped (x INT);",
        )
    } else {
        (
            format!("CREATE DATABASE {elsewhere};\nUSE {elsewhere};"),
            "CREATE TABLE dumped (x INT);",
        )
    };
    let moves: &'static str = Box::leak(moves.into_boxed_str());
    let list = || {
        vec![
            base(),
            Script::sql("1.0.1", "moves", moves, None),
            Script::sql("1.0.2", "lands", "CREATE TABLE landed (x INT);", None),
            Script::sql("1.0.3", "dump", dump, None),
            code::<D::Conn>("1.0.4", "CREATE TABLE coded (x INT)", ""),
        ]
    };
    for runs in [&["1.0.4"][..], &["1.0.1", "1.0.4"]] {
        let Some(db) = D::create() else { return };
        let mut conn = db.connect();
        for app in runs {
            migrator(app, list()).run(&mut conn).unwrap();
        }
        let mut conn = db.connect();
        let tables = D::tables(&mut conn);
        for table in ["coded", "dumped", "landed", T] {
            assert!(tables.contains(&table.to_owned()), "{runs:?}: {tables:?}");
        }
        assert_eq!(history::<D>(&mut conn, T).len(), 5, "{runs:?}");
        let cleanup = if D::NAME == "postgres" {
            format!("DROP SCHEMA {elsewhere} CASCADE")
        } else {
            format!("DROP DATABASE {elsewhere}")
        };
        conn.batch_execute(&cleanup).unwrap();
    }
}

fn a_failing_script_leaves_neither_its_effects_nor_its_row<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let list = |third: Script| {
        vec![
            scripts::<D>()[0],
            scripts::<D>()[1],
            third,
            scripts::<D>()[3],
        ]
    };
    let broken = failing::<D::Conn>("1.0.2", "INSERT INTO log VALUES ('1.0.2')");
    let err = migrator("1.0.10", list(broken)).run(&mut conn).unwrap_err();
    let Error::StepFailed {
        version,
        direction,
        transactional,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (version.to_string(), *direction, *transactional),
        ("1.0.2".into(), Direction::Up, true)
    );
    let msg = err.to_string();
    assert!(msg.starts_with("migration 1.0.2 `Exec`"), "{msg}");
    assert!(
        msg.contains("the script failed on purpose")
            && msg.contains("neither its changes nor its history row were kept"),
        "{msg}"
    );
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up", "1.0.1:up"]);
    assert_eq!(log::<D>(&mut conn), ["1.0.1"]);
    // Fixed, a rerun converges.
    let fixed = code::<D::Conn>("1.0.2", "INSERT INTO log VALUES ('1.0.2')", "");
    let report = migrator("1.0.10", list(fixed)).run(&mut conn).unwrap();
    assert_eq!(versions(&report), ["up 1.0.2", "up 1.0.10"]);
}

/// A step whose DDL ran before it failed: rolled back whole where DDL is
/// transactional; on MySQL, where the DDL committed, left marked in progress
/// so that nothing pretends it did not happen.
fn a_failing_step_after_ddl_is_rolled_back_or_left_marked_in_progress<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let sql_half = Script::sql(
        "1.0.1",
        "half_sql",
        "CREATE TABLE extra (id INTEGER NOT NULL);\nINSERT INTO log VALUES ('1.0.1');\nINSERT INTO no_such_table VALUES (1);",
        Some("DROP TABLE extra;"),
    );
    let code_half = failing::<D::Conn>("1.0.1", "CREATE TABLE extra (id INTEGER NOT NULL)");
    for (half, kind) in [(sql_half, "SQL"), (code_half, "code")] {
        let m = migrator("1.0.1", vec![base(), half]);
        let err = m.run(&mut conn).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("migration 1.0.1 `"), "{kind}: {msg}");
        if D::Conn::TRANSACTIONAL_DDL {
            assert!(
                matches!(
                    err,
                    Error::StepFailed {
                        dirty: false,
                        transactional: true,
                        ..
                    }
                ),
                "{kind}: {msg}"
            );
            assert!(
                msg.contains("neither its changes nor its history row were kept"),
                "{msg}"
            );
            assert_eq!(D::tables(&mut conn), ["log", T, STATE], "{kind}");
            assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up"], "{kind}");
            assert_eq!(log::<D>(&mut conn), Vec::<String>::new(), "{kind}");
            continue;
        }
        // The table creation committed implicitly; the row says so.
        assert!(
            matches!(
                err,
                Error::StepFailed {
                    dirty: true,
                    transactional: true,
                    ..
                }
            ),
            "{kind}: {msg}"
        );
        assert!(
            msg.contains("a statement in it committed implicitly (as DDL does on this database), so it may be HALF-APPLIED")
                && msg.contains("resolve --version 1.0.1 --completed"),
            "{kind}: {msg}"
        );
        assert_eq!(D::tables(&mut conn), ["extra", "log", T, STATE], "{kind}");
        let dirty = D::strings(
            &mut conn,
            &format!("SELECT CONCAT(version, ':', direction) AS s FROM {T} WHERE dirty"),
        );
        assert_eq!(dirty, ["1.0.1:up"], "{kind}");
        // Every run refuses, and status explains, until the user resolves.
        let refused = m.run(&mut conn).unwrap_err();
        assert!(matches!(refused, Error::Dirty { .. }), "{refused}");
        let status = m.status(&mut conn).unwrap();
        assert!(
            status.to_string().contains("IN PROGRESS (dirty)"),
            "{status}"
        );
        conn.batch_execute("DROP TABLE extra").unwrap();
        conn.batch_execute("DELETE FROM log").unwrap();
        m.resolve(&mut conn, "1.0.1", Resolution::RolledBack)
            .unwrap();
        assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up"], "{kind}");
        assert_eq!(D::tables(&mut conn), ["log", T, STATE], "{kind}");
    }
    if !D::Conn::TRANSACTIONAL_DDL {
        // Not only DDL commits implicitly: every step is marked there, and
        // the probe finds what an explicit COMMIT kept.
        // (SQL that commits is refused when listed; code can still do it.)
        let committed = code::<D::Conn>(
            "1.0.1",
            "INSERT INTO log VALUES ('kept');\nCOMMIT;\nINSERT INTO no_such_table VALUES (1);",
            "",
        )
        .with_name("half_sql");
        let m = migrator("1.0.1", vec![base(), committed]);
        let err = m.run(&mut conn).unwrap_err();
        assert!(
            matches!(err, Error::StepFailed { dirty: true, .. }),
            "{err}"
        );
        assert_eq!(log::<D>(&mut conn), ["kept"]);
        conn.batch_execute("DELETE FROM log").unwrap();
        m.resolve(&mut conn, "1.0.1", Resolution::RolledBack)
            .unwrap();
    }
    // Fixed, a rerun converges, on every backend.
    let fixed = Script::sql(
        "1.0.1",
        "half_sql",
        "CREATE TABLE extra (id INTEGER NOT NULL);\nINSERT INTO log VALUES ('1.0.1');",
        Some("DROP TABLE extra;"),
    );
    let report = migrator("1.0.1", vec![base(), fixed])
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&report), ["up 1.0.1"]);
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up", "1.0.1:up"]);
    assert_eq!(log::<D>(&mut conn), ["1.0.1"]);
    let dirty = D::strings(
        &mut conn,
        &format!("SELECT version AS s FROM {T} WHERE dirty"),
    );
    assert!(dirty.is_empty(), "{dirty:?}");
}

fn a_panicking_script_is_reported_rolled_back_and_the_lock_released<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let list = vec![
        base(),
        panicking::<D::Conn>("1.0.1", "INSERT INTO log VALUES ('1.0.1')"),
    ];
    let err = migrator("1.0.1", list).run(&mut conn).unwrap_err();
    assert!(
        matches!(&err, Error::StepFailed { source: StepError::Panicked(m), .. } if m == "script exploded"),
        "{err}"
    );
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up"]);
    // Another connection gets the lock at once.
    let mut other = db.connect();
    let report = migrator("1.0.1", scripts::<D>())
        .lock_timeout(Duration::from_millis(500))
        .run(&mut other)
        .unwrap();
    assert_eq!(versions(&report), ["up 1.0.1"]);
}

fn a_non_transactional_script_runs_outside_a_transaction_and_its_failure_says_so<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let outside = code::<D::Conn>("1.0.1", D::OUTSIDE_TRANSACTION_SQL, "").with_transaction(false);
    // The same SQL inside a transaction is refused by the database itself.
    let inside = code::<D::Conn>("1.0.1", D::OUTSIDE_TRANSACTION_SQL, "");
    let err = migrator("1.0.1", vec![base(), inside])
        .run(&mut conn)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StepFailed {
                transactional: true,
                ..
            }
        ),
        "{err}"
    );
    let report = migrator("1.0.1", vec![base(), outside])
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&report), ["up 1.0.1"]);

    let half =
        failing::<D::Conn>("1.0.2", "INSERT INTO log VALUES ('half')").with_transaction(false);
    let err = migrator("1.0.2", vec![base(), outside, half])
        .run(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("OUTSIDE a transaction and may be HALF-APPLIED: it stays marked in progress"),
        "{err}"
    );
    assert!(
        matches!(err, Error::StepFailed { dirty: true, .. }),
        "{err}"
    );
    assert_eq!(log::<D>(&mut conn), ["half"]);
    // Its row was written, marked in progress, before it ran.
    let dirty = D::strings(
        &mut conn,
        &format!("SELECT CONCAT(version, ':', direction) AS s FROM {T} WHERE dirty"),
    );
    assert_eq!(dirty, ["1.0.2:up"]);

    // Every run refuses, the dry run too, and status explains.
    let fixed =
        code::<D::Conn>("1.0.2", "INSERT INTO log VALUES ('fixed')", "").with_transaction(false);
    let m = migrator("1.0.2", vec![base(), outside, fixed]);
    for err in [
        m.run(&mut conn).unwrap_err(),
        m.plan(&mut conn).unwrap_err(),
    ] {
        assert!(matches!(err, Error::Dirty { change: 3, .. }), "{err}");
        assert!(
            err.to_string()
                .contains("resolve --version 1.0.2 --completed"),
            "{err}"
        );
    }
    let status = m.status(&mut conn).unwrap();
    let row = status
        .rows
        .iter()
        .find(|r| r.version.to_string() == "1.0.2")
        .unwrap();
    assert_eq!(row.state, State::InProgress);
    assert!(
        status.to_string().contains("IN PROGRESS (dirty)"),
        "{status}"
    );
    assert!(
        status
            .in_progress
            .as_deref()
            .unwrap()
            .contains("--rolled-back")
    );

    // Resolving another version is refused; the user repairs and resolves.
    let err = m
        .resolve(&mut conn, "1.0.1", Resolution::RolledBack)
        .unwrap_err();
    assert!(
        err.to_string().contains("the step in progress is 1.0.2"),
        "{err}"
    );
    conn.batch_execute("DELETE FROM log WHERE v = 'half'")
        .unwrap();
    m.resolve(&mut conn, "1.0.2", Resolution::RolledBack)
        .unwrap();
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up", "1.0.1:up"]);
    let report = m.run(&mut conn).unwrap();
    assert_eq!(versions(&report), ["up 1.0.2"]);
    assert_eq!(log::<D>(&mut conn), ["fixed"]);
    assert_eq!(
        history::<D>(&mut conn, T),
        ["1.0.0:up", "1.0.1:up", "1.0.2:up"]
    );
    let err = m
        .resolve(&mut conn, "1.0.2", Resolution::Completed)
        .unwrap_err();
    assert!(err.to_string().contains("no step is in progress"), "{err}");
}

fn a_step_resolved_as_completed_counts_as_applied<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let half =
        failing::<D::Conn>("1.0.1", "INSERT INTO log VALUES ('all')").with_transaction(false);
    let m = migrator("1.0.1", vec![base(), half]);
    let err = m.run(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::StepFailed { dirty: true, .. }),
        "{err}"
    );
    // The user finds every change in place.
    let row = m
        .resolve(&mut conn, "1.0.1", Resolution::Completed)
        .unwrap();
    assert_eq!(
        (row.version.as_str(), row.direction.as_str()),
        ("1.0.1", "up")
    );
    assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up", "1.0.1:up"]);
    let report = m.run(&mut conn).unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(log::<D>(&mut conn), ["all"]);
}

fn atomic_mode_rolls_back_the_whole_plan<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let list = vec![
        base(),
        scripts::<D>()[1],
        failing::<D::Conn>("1.0.2", "INSERT INTO log VALUES ('1.0.2')"),
    ];
    if !D::Conn::TRANSACTIONAL_DDL {
        // MySQL commits DDL implicitly: atomic mode is refused up front, the
        // dry run too, and nothing at all is created.
        for err in [
            migrator("1.0.2", list.clone())
                .atomic(true)
                .run(&mut conn)
                .unwrap_err(),
            migrator("1.0.2", list.clone())
                .atomic(true)
                .plan(&mut conn)
                .unwrap_err(),
        ] {
            assert_eq!(
                err.to_string(),
                "atomic mode refused, nothing was run: MySQL commits DDL implicitly, so a plan cannot be rolled back as a whole; run without atomic mode"
            );
        }
        assert_eq!(D::tables(&mut conn), Vec::<String>::new());
        return;
    }
    let err = migrator("1.0.2", list)
        .atomic(true)
        .run(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("rolled back: the database is unchanged"),
        "{err}"
    );
    assert_eq!(D::tables(&mut conn), Vec::<String>::new());
    // Atomic mode refuses a plan with a non-transactional step, running nothing.
    let outside = code::<D::Conn>("1.0.1", "SELECT 1", "").with_transaction(false);
    let err = migrator("1.0.1", vec![base(), outside])
        .atomic(true)
        .run(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("atomic mode refused, nothing was run: 1.0.1 `Exec`"),
        "{err}"
    );
    assert_eq!(D::tables(&mut conn), Vec::<String>::new());
    // And succeeds as a whole. Its history rows, written together at the
    // end, are those a run step by step writes, and a downgrade adds its own.
    let report = migrator("1.0.2", scripts::<D>())
        .atomic(true)
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&report), ["up 1.0.0", "up 1.0.1", "up 1.0.2"]);
    let down = migrator("1.0.1", scripts::<D>())
        .atomic(true)
        .authorize_downgrade_to("1.0.1")
        .run(&mut conn)
        .unwrap();
    assert_eq!(versions(&down), ["down 1.0.2"]);
    let Some(other) = D::create() else { return };
    let mut stepwise = other.connect();
    migrator("1.0.2", scripts::<D>())
        .run(&mut stepwise)
        .unwrap();
    migrator("1.0.1", scripts::<D>())
        .authorize_downgrade_to("1.0.1")
        .run(&mut stepwise)
        .unwrap();
    let rows = |conn: &mut D::Conn| {
        D::strings(
            conn,
            &format!(
                "SELECT CONCAT({c}, ' ', version, ' ', name, ' ', description, ' ', kind, ' ', direction, ' ',
                               CASE WHEN executed THEN 'run' ELSE 'skipped' END, ' ',
                               COALESCE(checksum, '-'), ' ', CASE WHEN dirty THEN 'dirty' ELSE 'clean' END) AS s
                 FROM {T} ORDER BY {c}",
                c = D::CHANGE
            ),
        )
    };
    let atomic = rows(&mut conn);
    assert_eq!(atomic.len(), 4, "{atomic:?}");
    assert_eq!(atomic, rows(&mut stepwise));
}

fn an_edited_sql_migration_is_refused_but_line_endings_do_not_count<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("1.0.0", vec![base()]).run(&mut conn).unwrap();
    let edited = Script::sql(
        "1.0.0",
        "create_log",
        "CREATE TABLE log (v TEXT);",
        Some("DROP TABLE log;"),
    );
    let err = migrator("1.0.0", vec![edited]).run(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("migration 1.0.0 `create_log` was applied but its SQL has changed since"),
        "{err}"
    );
    let status = migrator("1.0.0", vec![edited]).status(&mut conn).unwrap();
    assert_eq!(status.rows[0].state, State::ChecksumChanged);
    let crlf = Script::sql(
        "1.0.0",
        "create_log",
        "CREATE TABLE log (v TEXT NOT NULL);\r\n",
        None,
    );
    let lf = Script::sql(
        "1.0.0",
        "create_log",
        "CREATE TABLE log (v TEXT NOT NULL);\n",
        None,
    );
    let db2 = D::create().unwrap();
    let mut conn2 = db2.connect();
    migrator("1.0.0", vec![lf]).run(&mut conn2).unwrap();
    assert!(
        migrator("1.0.0", vec![crlf])
            .run(&mut conn2)
            .unwrap()
            .steps
            .is_empty()
    );
}

fn the_tracking_table_name_comes_from_the_configuration<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("1.0.1", scripts::<D>())
        .table("deploy_history")
        .run(&mut conn)
        .unwrap();
    assert_eq!(
        D::tables(&mut conn),
        ["deploy_history", "deploy_history_state", "log"]
    );
    assert_eq!(
        history::<D>(&mut conn, "deploy_history"),
        ["1.0.0:up", "1.0.1:up"]
    );
    // A reserved word works too: the name is always quoted.
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let order = migrator("1.0.2", scripts::<D>()).table("order");
    order.run(&mut conn).unwrap();
    let status = order.status(&mut conn).unwrap();
    let applied = status
        .rows
        .iter()
        .filter(|r| r.state == State::Applied)
        .count();
    assert_eq!(applied, 3, "{status}");
    assert!(D::tables(&mut conn).contains(&"order".to_owned()));
    assert!(order.run(&mut conn).unwrap().steps.is_empty());
}

fn a_table_name_carrying_sql_is_rejected_before_anything_runs<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    for name in [
        "x\"; DROP TABLE log; --",
        "migrations; DELETE FROM users",
        "public.history",
    ] {
        let err = migrator("1.0.1", scripts::<D>())
            .table(name)
            .run(&mut conn)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidTableName { .. }), "{err}");
    }
    assert_eq!(D::tables(&mut conn), Vec::<String>::new());
}

fn two_threads_migrating_at_once_apply_each_script_exactly_once<D: TestDb + Sync>() {
    let Some(db) = D::create() else { return };
    let list = {
        let mut l = scripts::<D>();
        l[1] = slow::<D::Conn>(
            "1.0.1",
            "INSERT INTO log VALUES ('1.0.1')",
            Duration::from_millis(300),
        );
        l
    };
    let reports: Vec<migrate::Report> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    migrator("2.0.0", list.clone())
                        .run(&mut db.connect())
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = reports.iter().map(|r| r.steps.len()).sum();
    assert_eq!(total, 6, "{reports:?}");
    let mut conn = db.connect();
    assert_eq!(
        history::<D>(&mut conn, T),
        [
            "1.0.0:up",
            "1.0.1:up",
            "1.0.2:up",
            "1.0.10:up",
            "1.1.0:up",
            "2.0.0:up"
        ]
    );
    assert_eq!(log::<D>(&mut conn).len(), 5);
}

/// The migration lock excludes other instances until it is released, and
/// goes away with the connection (or process) that held it, unreleased.
fn a_held_lock_times_out_others_and_dies_with_its_holder<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let table = TableName::new(T).unwrap();
    let mut holder = db.connect();
    let lock = holder.lock(&table, Duration::from_secs(5)).unwrap();
    let mut other = db.connect();
    let err = migrator("1.0.1", scripts::<D>())
        .lock_timeout(Duration::from_millis(300))
        .run(&mut other)
        .unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    assert!(
        err.to_string().contains(T),
        "the error names the table: {err}"
    );
    assert_eq!(D::tables(&mut other), Vec::<String>::new(), "nothing ran");
    // The holder goes away without unlocking, as a crashed process does.
    drop(lock);
    drop(holder);
    let report = migrator("1.0.1", scripts::<D>())
        .lock_timeout(Duration::from_secs(10))
        .run(&mut other)
        .unwrap();
    assert_eq!(versions(&report), ["up 1.0.0", "up 1.0.1"]);
}

/// A mark "in progress" seen without the lock may belong to a step another
/// process is running right now: a run or dry run waits for that process
/// instead of refusing, and sees the step finished.
fn a_step_in_progress_in_another_instance_is_waited_for_not_refused<D: TestDb + Sync>() {
    let Some(db) = D::create() else { return };
    let list = vec![
        base(),
        slow::<D::Conn>(
            "1.0.1",
            "INSERT INTO log VALUES ('1.0.1')",
            Duration::from_millis(600),
        )
        .with_transaction(false),
    ];
    let m = migrator("1.0.1", list);
    std::thread::scope(|s| {
        let owner = s.spawn(|| m.run(&mut db.connect()).unwrap());
        // Wait until the slow step is marked in progress (on MySQL the
        // first step is marked too, as every step there is).
        let mut conn = db.connect();
        let started = std::time::Instant::now();
        while !D::tables(&mut conn).contains(&T.to_owned())
            || D::strings(
                &mut conn,
                &format!("SELECT version AS s FROM {T} WHERE dirty AND version = '1.0.1'"),
            )
            .is_empty()
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the step never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Both start while the step is still in progress.
        let dry = s.spawn(|| m.plan(&mut db.connect()).unwrap());
        let report = m.run(&mut conn).unwrap();
        assert!(report.steps.is_empty(), "{report:?}");
        assert!(
            report.locked,
            "the run saw the mark, so it waited for the lock"
        );
        let dry = dry.join().unwrap();
        assert!(dry.plan.is_empty(), "{}", dry.plan);
        assert_eq!(versions(&owner.join().unwrap()), ["up 1.0.0", "up 1.0.1"]);
    });
    assert_eq!(history::<D>(&mut db.connect(), T), ["1.0.0:up", "1.0.1:up"]);
}

fn the_dry_run_shows_the_steps_and_sql_and_changes_nothing<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let dry = migrator("1.0.1", scripts::<D>()).plan(&mut conn).unwrap();
    let shown = dry.to_string();
    assert!(shown.starts_with("(empty) -> 1.0.1: 2 step(s)\n  1. up   1.0.0 create_log (sql)\n       | CREATE TABLE log (v TEXT NOT NULL);\n  2. up   1.0.1 Exec (code)"), "{shown}");
    assert_eq!(dry.sql[0].as_deref(), Some(CREATE_LOG));
    assert_eq!(D::tables(&mut conn), Vec::<String>::new());
}

fn status_reports_every_known_and_applied_script<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let mut with_extra = scripts::<D>();
    with_extra.push(Script::sql("1.0.3", "extra", "SELECT 1;", None));
    migrator("1.0.3", with_extra).run(&mut conn).unwrap();
    let status = migrator("1.1.0", scripts::<D>()).status(&mut conn).unwrap();
    let rows: Vec<String> = status
        .rows
        .iter()
        .map(|r| format!("{} {}", r.version, r.state))
        .collect();
    assert_eq!(
        rows,
        [
            "1.0.0 applied",
            "1.0.1 applied",
            "1.0.2 applied",
            "1.0.3 applied, unknown to this build",
            "1.0.10 pending",
            "1.1.0 pending",
            "2.0.0 above app version"
        ]
    );
    assert_eq!(
        status.database_version.as_ref().unwrap().to_string(),
        "1.0.3"
    );
    assert!(
        status.rows[0]
            .applied_at
            .as_deref()
            .is_some_and(|t| t.len() >= 19 && t.contains('T')),
        "{:?}",
        status.rows[0]
    );
    assert!(
        status.to_string().contains("1.0.3          extra"),
        "{status}"
    );
}

fn a_script_written_for_another_backend_is_refused_before_anything_runs<D: TestDb>() {
    struct ForStrings;
    impl migrate::MigrationScript for ForStrings {
        type Connection = String;
        fn up(&self, _: &mut String) -> Result<(), migrate::BoxError> {
            Ok(())
        }
    }
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let mut list = scripts::<D>();
    list.push(Script::new("1.0.3", &ForStrings));
    let err = migrator("2.0.0", list).run(&mut conn).unwrap_err();
    assert!(
        err.to_string()
            .contains("1.0.3 `ForStrings` (expects `alloc::string::String`)"),
        "{err}"
    );
    assert_eq!(D::tables(&mut conn), Vec::<String>::new());
}

/// The state table beside the default tracking table.
const STATE: &str = "migrate_history_state";

/// Without its state row (a database an earlier release migrated, or the
/// row cleared by an edit), and for `run_to`, a settled database is still
/// checked by one read of the history, in three columns: no plan, no lock.
fn a_settled_database_without_its_state_row_is_checked_by_one_read_of_the_history<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let first = migrator("1.0.10", scripts::<D>()).run(&mut conn).unwrap();
    assert!(first.locked && first.steps.len() == 4, "{first}");
    let sent = sent_queries(&mut conn);
    let again = migrator("1.0.10", scripts::<D>())
        .run_to(&mut conn, None)
        .unwrap();
    assert!(
        !again.locked && again.steps.is_empty() && !again.fast_path,
        "{again}"
    );
    assert_eq!(
        (
            again.from.unwrap().to_string(),
            again.to.unwrap().to_string()
        ),
        ("1.0.10".to_owned(), "1.0.10".to_owned())
    );
    let queries = sent.lock().unwrap().clone();
    let reads: Vec<&String> = queries.iter().filter(|q| q.contains(T)).collect();
    assert_eq!(reads.len(), 1, "{queries:#?}");
    assert!(
        reads[0].starts_with("SELECT version, (direction = 'up')")
            && reads[0].contains(", checksum FROM"),
        "{queries:#?}"
    );
    // A newer application version without new scripts is settled too.
    let bumped = migrator("1.0.11", scripts::<D>())
        .run_to(&mut conn, None)
        .unwrap();
    assert!(!bumped.locked && bumped.steps.is_empty(), "{bumped}");
}

fn an_edit_of_the_history_by_hand_is_noticed_at_the_next_start_up<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // `run_to` skips the state row (which a trigger clears at such edits
    // where the backend has one): this is the check that reads the rows.
    let run = |conn: &mut D::Conn, app: &str| {
        migrator(app, scripts::<D>())
            .run_to(conn, None)
            .map_err(Box::new)
    };
    run(&mut conn, "1.1.0").unwrap();
    // Not the last row, and no row added or deleted.
    conn.batch_execute(&format!(
        "UPDATE {T} SET version = 'garbled' WHERE version = '1.0.1'"
    ))
    .unwrap();
    let err = run(&mut conn, "1.1.0").unwrap_err();
    assert!(matches!(*err, Error::CorruptHistory { .. }), "{err}");
    conn.batch_execute(&format!(
        "UPDATE {T} SET version = '1.0.1' WHERE version = 'garbled'"
    ))
    .unwrap();
    assert!(run(&mut conn, "1.1.0").unwrap().steps.is_empty());
    // The last row deleted: that script runs again.
    conn.batch_execute(&format!("DELETE FROM {T} WHERE version = '1.1.0'"))
        .unwrap();
    let rerun = run(&mut conn, "1.1.0").unwrap();
    assert_eq!(versions(&rerun), ["up 1.1.0"]);
    assert_eq!(
        log::<D>(&mut conn).iter().filter(|v| *v == "1.1.0").count(),
        2
    );
    // A row added by hand: a script this build does not know, below the
    // application version; nothing to do, and nothing written.
    let rows = history::<D>(&mut conn, T).len();
    conn.batch_execute(&format!(
        "INSERT INTO {T} ({}, version, name, description, kind, direction, executed, applied_at, duration_ms, dirty)
         VALUES ({}, '1.0.3', 'by_hand', '', 'code', 'up', TRUE, '2026-01-01 00:00:00', 0, FALSE)",
        D::CHANGE,
        rows + 1
    ))
    .unwrap();
    let status = migrator("1.1.0", scripts::<D>()).status(&mut conn).unwrap();
    assert!(status.rows.iter().any(|r| r.state == State::AppliedUnknown));
    let added = run(&mut conn, "1.1.0").unwrap();
    assert!(added.steps.is_empty() && !added.locked, "{added}");
    assert_eq!(history::<D>(&mut conn, T).len(), rows + 1);
    // Emptied, then dropped: every script is pending again, and the first
    // fails on the table it made before.
    for gone in [format!("DELETE FROM {T}"), format!("DROP TABLE {T}")] {
        conn.batch_execute(&gone).unwrap();
        let err = run(&mut conn, "1.1.0").unwrap_err();
        assert!(
            matches!(*err, Error::StepFailed { .. }) && err.to_string().contains("1.0.0"),
            "{err}"
        );
        // (Where DDL commits implicitly, the step is marked in progress.)
        conn.batch_execute(&format!("DELETE FROM {T}; DROP TABLE log"))
            .unwrap();
        run(&mut conn, "1.1.0").unwrap();
    }
}

fn a_start_up_inside_the_callers_transaction_before_any_history_leaves_it_usable<D: TestDb>() {
    if !D::Conn::TRANSACTIONAL_DDL {
        return; // Refused inside a transaction (a_steps_session_settings_...).
    }
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // Nothing at or below the application version: nothing to do.
    let later = migrator("0.1.0", scripts::<D>());
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        let report = later.run(c).unwrap();
        assert!(
            report.steps.is_empty() && report.above_target.len() == 6,
            "{report}"
        );
        c.batch_execute("CREATE TABLE mine (x INT); INSERT INTO mine VALUES (1)")
    })
    .unwrap();
    assert_eq!(D::tables(&mut conn), ["mine"]);
}

fn a_settled_database_is_checked_by_its_state_row_alone<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let first = migrator("1.0.10", scripts::<D>()).run(&mut conn).unwrap();
    assert!(!first.fast_path);
    let again = migrator("1.0.10", scripts::<D>()).run(&mut conn).unwrap();
    assert!(
        again.fast_path && !again.locked && again.steps.is_empty(),
        "{again}"
    );
    assert_eq!(
        (
            again.from.unwrap().to_string(),
            again.to.unwrap().to_string()
        ),
        ("1.0.10".to_owned(), "1.0.10".to_owned())
    );
    // A newer application version without new scripts is settled too.
    let bumped = migrator("1.0.11", scripts::<D>()).run(&mut conn).unwrap();
    assert!(bumped.fast_path, "{bumped}");
    // Proof that the history is not read on the fast path: a version
    // garbled by hand, unseen by the triggers that would forget the state
    // row, goes unnoticed there, while the full check refuses it.
    let garble = format!("UPDATE {T} SET version = 'garbled' WHERE version = '1.0.1'");
    let unseen = match <D::Conn as Backend>::NAME {
        "PostgreSQL" => format!(
            "ALTER TABLE {T} DISABLE TRIGGER migrate_forget_state; {garble};
             ALTER TABLE {T} ENABLE TRIGGER migrate_forget_state"
        ),
        "SQLite" => format!("DROP TRIGGER {T}_forget_state_on_update; {garble}"),
        _ => garble,
    };
    conn.batch_execute(&unseen).unwrap();
    let blind = migrator("1.0.10", scripts::<D>()).run(&mut conn).unwrap();
    assert!(blind.fast_path);
    let err = migrator("1.0.10", scripts::<D>())
        .run_to(&mut conn, None)
        .unwrap_err();
    assert!(matches!(err, Error::CorruptHistory { .. }), "{err}");
}

fn any_difference_from_the_settled_state_falls_back_to_the_full_check<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let run = |conn: &mut D::Conn, app: &str| migrator(app, scripts::<D>()).run(conn).unwrap();
    run(&mut conn, "1.0.10");
    assert!(run(&mut conn, "1.0.10").fast_path);

    // A new script in the build.
    let up = run(&mut conn, "1.1.0");
    assert_eq!(
        (versions(&up), up.fast_path),
        (vec!["up 1.1.0".to_owned()], false)
    );
    // An older application, authorized to downgrade.
    let down = migrator("1.0.10", scripts::<D>())
        .authorize_downgrade_to("1.0.10")
        .run(&mut conn)
        .unwrap();
    assert_eq!(
        (versions(&down), down.fast_path),
        (vec!["down 1.1.0".to_owned()], false)
    );
    assert!(run(&mut conn, "1.0.10").fast_path);

    // The state row edited, then deleted, by hand: full checks, no-ops.
    conn.batch_execute(&format!("UPDATE {STATE} SET fingerprint = 'x'"))
        .unwrap();
    let edited = run(&mut conn, "1.0.10");
    assert!(!edited.fast_path && edited.steps.is_empty(), "{edited}");
    conn.batch_execute(&format!("DELETE FROM {STATE}")).unwrap();
    let deleted = run(&mut conn, "1.0.10");
    assert!(!deleted.fast_path && deleted.steps.is_empty(), "{deleted}");
    // That start-up found the database settled and wrote the row again,
    // under the lock, which was free.
    assert!(deleted.locked);
    assert!(run(&mut conn, "1.0.10").fast_path);
    // The next run that takes the lock records it again.
    run(&mut conn, "1.1.0");
    assert!(run(&mut conn, "1.1.0").fast_path);

    // The last history row deleted by hand: that script runs again.
    conn.batch_execute(&format!("DELETE FROM {T} WHERE version = '1.1.0'"))
        .unwrap();
    let rerun = run(&mut conn, "1.1.0");
    assert_eq!(
        (versions(&rerun), rerun.fast_path),
        (vec!["up 1.1.0".to_owned()], false)
    );
    assert_eq!(
        log::<D>(&mut conn).iter().filter(|v| *v == "1.1.0").count(),
        2
    );

    // A row added by hand: the full check sees a script it does not know.
    let mut rows = history::<D>(&mut conn, T).len();
    conn.batch_execute(&format!(
        "INSERT INTO {T} ({}, version, name, description, kind, direction, executed, applied_at, duration_ms, dirty)
         VALUES ({}, '1.0.3', 'by_hand', '', 'code', 'up', TRUE, '2026-01-01 00:00:00', 0, FALSE)",
        D::CHANGE,
        rows + 1
    ))
    .unwrap();
    rows += 1;
    let status = migrator("1.1.0", scripts::<D>()).status(&mut conn).unwrap();
    assert!(status.rows.iter().any(|r| r.state == State::AppliedUnknown));
    let added = run(&mut conn, "1.1.0");
    assert!(!added.fast_path && added.steps.is_empty(), "{added}");
    // Not settled (a script this build does not know): no lock, no row.
    assert!(!added.locked);
    assert_eq!(history::<D>(&mut conn, T).len(), rows);
}

fn an_edit_of_any_history_row_by_hand_is_noticed_where_a_trigger_guards_the_state<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // (Boxed: the error is large.)
    let run = |conn: &mut D::Conn| {
        migrator("1.0.10", scripts::<D>())
            .run(conn)
            .map_err(Box::new)
    };
    run(&mut conn).unwrap();
    assert!(run(&mut conn).unwrap().fast_path);
    // Not the last row, and no row added or deleted: only a trigger sees it.
    conn.batch_execute(&format!(
        "UPDATE {T} SET version = 'garbled' WHERE version = '1.0.1'"
    ))
    .unwrap();
    match run(&mut conn) {
        Err(err) => {
            assert!(D::STATE_TRIGGER, "{err}");
            assert!(matches!(*err, Error::CorruptHistory { .. }), "{err}");
        }
        Ok(report) => assert!(!D::STATE_TRIGGER && report.fast_path, "{report}"),
    }
    // Mended by hand, and not settled again yet: the full check (the
    // trigger emptied the state table) writes the row back under the lock.
    conn.batch_execute(&format!(
        "UPDATE {T} SET version = '1.0.1' WHERE version = 'garbled'"
    ))
    .unwrap();
    let mended = run(&mut conn).unwrap();
    assert_eq!(mended.fast_path, !D::STATE_TRIGGER, "{mended}");
    assert!(run(&mut conn).unwrap().fast_path);
    // An emptied history (on PostgreSQL by `TRUNCATE`, which its trigger
    // sees too): noticed on every backend, since the last change is gone as
    // well. Every script is pending again, and the first fails on the table
    // it made before.
    let empty = match <D::Conn as Backend>::NAME {
        "PostgreSQL" => format!("TRUNCATE {T}"),
        _ => format!("DELETE FROM {T}"),
    };
    let all_pending = |conn: &mut D::Conn| {
        let err = run(conn).unwrap_err();
        assert!(
            matches!(*err, Error::StepFailed { .. }) && err.to_string().contains("1.0.0"),
            "{err}"
        );
    };
    let settle_afresh = |conn: &mut D::Conn| {
        conn.batch_execute(&empty).unwrap();
        conn.batch_execute("DROP TABLE log").unwrap();
        run(conn).unwrap();
        assert!(run(conn).unwrap().fast_path);
    };
    conn.batch_execute(&empty).unwrap();
    all_pending(&mut conn);
    // Settled again, then the history table dropped (its triggers go with
    // it) and the state table left: noticed on every backend too.
    settle_afresh(&mut conn);
    conn.batch_execute(&format!("DROP TABLE {T}")).unwrap();
    all_pending(&mut conn);
    // Settled again, then the history table dropped and made again empty
    // beside the old state row, without triggers: what a run killed
    // between making the table and clearing the row leaves. Noticed too.
    settle_afresh(&mut conn);
    conn.batch_execute(&format!("DROP TABLE {T}")).unwrap();
    conn.create_table(&TableName::new(T).unwrap()).unwrap();
    all_pending(&mut conn);
}

fn a_changed_script_under_a_settled_state_is_refused_as_before<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    migrator("1.0.0", vec![base()]).run(&mut conn).unwrap();
    assert!(
        migrator("1.0.0", vec![base()])
            .run(&mut conn)
            .unwrap()
            .fast_path
    );
    let edited = Script::sql("1.0.0", "create_log", "CREATE TABLE log (v TEXT);", None);
    let err = migrator("1.0.0", vec![edited]).run(&mut conn).unwrap_err();
    assert!(
        err.to_string().contains("its SQL has changed since"),
        "{err}"
    );
    let rebuilt = Script::sql(
        "1.0.0+build.2",
        "create_log",
        CREATE_LOG,
        Some("DROP TABLE log;"),
    );
    let err = migrator("1.0.0+build.2", vec![rebuilt])
        .run(&mut conn)
        .unwrap_err();
    assert!(
        matches!(err, Error::Plan(PlanError::BuildMetadataOnly { .. })),
        "{err}"
    );
}

fn every_change_to_the_history_leaves_the_state_row_true<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let fast = |conn: &mut D::Conn, app: &str| {
        let report = migrator(app, scripts::<D>()).run(conn).unwrap();
        assert!(report.steps.is_empty(), "{report}");
        report.fast_path
    };
    // Baseline, on a database whose schema the scripts describe.
    conn.batch_execute(CREATE_LOG).unwrap();
    migrator("1.0.2", scripts::<D>())
        .baseline(&mut conn, "1.0.2")
        .unwrap();
    assert!(fast(&mut conn, "1.0.2"));
    // Down through `run_to`.
    migrator("2.0.0", scripts::<D>()).run(&mut conn).unwrap();
    migrator("2.0.0", scripts::<D>())
        .run_to(
            &mut conn,
            Some(migrate::Target::DownTo(
                migrate::Version::parse("1.0.10").unwrap(),
            )),
        )
        .unwrap();
    assert!(fast(&mut conn, "1.0.10"));
    // Atomic mode, where the backend allows it.
    if D::Conn::TRANSACTIONAL_DDL {
        migrator("2.0.0", scripts::<D>())
            .atomic(true)
            .run(&mut conn)
            .unwrap();
        assert!(fast(&mut conn, "2.0.0"));
    }
    // Resolve.
    let db2 = D::create().unwrap();
    let mut conn2 = db2.connect();
    let half =
        failing::<D::Conn>("1.0.1", "INSERT INTO log VALUES ('all')").with_transaction(false);
    let m = migrator("1.0.1", vec![base(), half]);
    m.run(&mut conn2).unwrap_err();
    m.resolve(&mut conn2, "1.0.1", Resolution::Completed)
        .unwrap();
    let report = m.run(&mut conn2).unwrap();
    assert!(report.fast_path && report.steps.is_empty(), "{report}");
}

fn a_table_named_like_the_state_table_is_refused_not_emptied<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    conn.batch_execute(&format!("CREATE TABLE {STATE} (v TEXT NOT NULL)"))
        .unwrap();
    conn.batch_execute(&format!("INSERT INTO {STATE} VALUES ('mine')"))
        .unwrap();
    let err = migrator("1.0.1", scripts::<D>())
        .run(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("a table of that name exists without this tool's columns"),
        "{err}"
    );
    assert_eq!(
        D::strings(&mut conn, &format!("SELECT v AS s FROM {STATE}")),
        ["mine"]
    );
    // Where DDL is transactional, the tracking table made in the same
    // transaction went with the refusal.
    let tables = D::tables(&mut conn);
    if D::Conn::TRANSACTIONAL_DDL {
        assert!(!tables.contains(&T.to_owned()), "{tables:?}");
    } else {
        assert!(history::<D>(&mut conn, T).is_empty());
    }
}

fn a_run_inside_the_callers_transaction_survives_a_missing_state_table<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let m = migrator("1.0.1", scripts::<D>());
    m.run(&mut conn).unwrap();
    // As a database migrated before the state table existed.
    conn.batch_execute(&format!("DROP TABLE {STATE}")).unwrap();
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        let report = m.run(c).unwrap();
        assert!(!report.fast_path && report.steps.is_empty(), "{report}");
        // The transaction is still usable: the failed read did not abort it.
        c.batch_execute("INSERT INTO log VALUES ('inside')")
    })
    .unwrap();
    assert!(log::<D>(&mut conn).contains(&"inside".to_owned()));
    // Outside a transaction, the next start-up writes the row again.
    let after = m.run(&mut conn).unwrap();
    assert!(after.locked && !after.fast_path, "{after}");
    assert!(m.run(&mut conn).unwrap().fast_path);
}

/// What every query a connection sends looks like, as diesel reports it.
fn sent_queries<C: Connection>(conn: &mut C) -> Arc<Mutex<Vec<String>>> {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&sent);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            log.lock().unwrap().push(query.to_string());
        }
    });
    sent
}

/// Where the backend can (PostgreSQL), an SQL step and its history row go
/// to the database as one message, one round trip; elsewhere, and inside a
/// caller's transaction, statement by statement. Either way the same is
/// recorded: names and descriptions with quotes and backslashes exactly,
/// and a last line that is a comment without its `;` takes in nothing.
/// A step that fails, in its SQL or at its `COMMIT`, keeps nothing, and the
/// connection goes on working, diesel's transactions included.
fn an_sql_step_is_one_message_where_the_backend_allows<D: TestDb>() {
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let sent = sent_queries(&mut conn);
    let odd = Script::sql(
        "1.0.1",
        "it's a \\ name",
        "INSERT INTO log VALUES ('1.0.1');\nINSERT INTO log VALUES ('1.0.1b') -- the last line, no `;`",
        Some("DELETE FROM log WHERE v LIKE '1.0.1%'"),
    )
    .with_description("quotes ' '' and \\' backslashes \\\\");
    let list = vec![base(), odd, scripts::<D>()[2]];
    let report = migrator("1.0.2", list.clone()).run(&mut conn).unwrap();
    assert_eq!(versions(&report), ["up 1.0.0", "up 1.0.1", "up 1.0.2"]);
    assert_eq!(log::<D>(&mut conn), ["1.0.1", "1.0.1b", "1.0.2"]);
    let rows = D::strings(
        &mut conn,
        &format!(
            "SELECT CONCAT(version, '|', name, '|', description, '|', kind, '|', direction, '|', duration_ms >= 0) AS s FROM {T} ORDER BY {}",
            D::CHANGE
        ),
    );
    let yes = D::strings(&mut conn, "SELECT CONCAT(1 = 1) AS s")[0].clone();
    assert_eq!(
        rows,
        [
            format!("1.0.0|create_log||sql|up|{yes}"),
            format!("1.0.1|it's a \\ name|quotes ' '' and \\' backslashes \\\\|sql|up|{yes}"),
            format!("1.0.2|Exec||code|up|{yes}"),
        ]
    );
    let with_step = |sent: &[String], marker: &str| -> Vec<String> {
        sent.iter()
            .filter(|q| q.contains(marker))
            .cloned()
            .collect()
    };
    let queries = sent.lock().unwrap().clone();
    let step = with_step(&queries, "('1.0.1b')");
    assert_eq!(step.len(), 1, "{queries:#?}");
    let history_insert = format!("INSERT INTO \"{T}\"");
    assert_eq!(
        step[0].starts_with("BEGIN;")
            && step[0].contains(&history_insert)
            && step[0].ends_with("COMMIT"),
        D::Conn::NAME == "PostgreSQL",
        "{}",
        step[0]
    );
    if D::Conn::SQL_STEP_IN_ONE_MESSAGE {
        // Nothing else was sent for it: the query before is the step before,
        // itself one message, and the one after opens the code step's
        // transaction, checking the migration lock in the same message.
        let at = queries.iter().position(|q| q == &step[0]).unwrap();
        assert!(
            queries[at - 1].starts_with("BEGIN;")
                && queries[at - 1].contains("CREATE TABLE log")
                && queries[at - 1].ends_with("COMMIT"),
            "{queries:#?}"
        );
        assert!(
            queries[at + 1].starts_with("BEGIN;\nSELECT CAST(CASE WHEN pg_try_advisory_xact_lock("),
            "{queries:#?}"
        );
    }

    // Inside the caller's transaction the step runs under a savepoint, one
    // statement at a time, and commits with the caller. On MySQL, where
    // creating the tracking table, even one that exists, would commit the
    // caller's transaction implicitly, the run is refused instead and the
    // caller's transaction is left to the caller: its rollback below takes
    // back its row.
    let later = Script::sql("1.0.3", "later", "INSERT INTO log VALUES ('1.0.3');", None);
    let mut with_later = list.clone();
    with_later.push(later);
    sent.lock().unwrap().clear();
    if D::Conn::TRANSACTIONAL_DDL {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            migrator("1.0.3", with_later.clone()).run(c).unwrap();
            Ok(())
        })
        .unwrap();
        let queries = sent.lock().unwrap().clone();
        let step = with_step(&queries, "('1.0.3')");
        // The step's SQL as written, then, on PostgreSQL, the session's
        // search_path put back, in the same statement text.
        assert_eq!(step.len(), 1, "{queries:#?}");
        assert!(
            step[0].starts_with("INSERT INTO log VALUES ('1.0.3');")
                && (D::NAME != "postgres"
                    || step[0].ends_with(
                        "\nSELECT set_config('search_path', E'\"$user\", public', false) WHERE current_setting('search_path') <> E'\"$user\", public'"
                    )),
            "{queries:#?}"
        );
    } else {
        // Refused before anything runs, and the caller's work is intact.
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            c.batch_execute("INSERT INTO log VALUES ('mine')")?;
            let err = migrator("1.0.3", with_later.clone()).run(c).unwrap_err();
            assert!(
                matches!(err, Error::InsideTransaction { .. })
                    && err.to_string().contains("nothing was run"),
                "{err}"
            );
            Err::<(), _>(diesel::result::Error::RollbackTransaction)
        })
        .unwrap_err();
        assert!(!log::<D>(&mut conn).contains(&"mine".to_owned()));
        migrator("1.0.3", with_later.clone())
            .run(&mut conn)
            .unwrap();
    }
    assert_eq!(history::<D>(&mut conn, T).last().unwrap(), "1.0.3:up");

    // A failing step keeps nothing, and the connection works on.
    let mut failing_steps = vec![Script::sql(
        "1.0.4",
        "fails_in_its_sql",
        "INSERT INTO log VALUES ('1.0.4');\nINSERT INTO no_such_table VALUES (1);",
        None,
    )];
    failing_steps.extend(
        D::DEFERRED_VIOLATION.map(|sql| Script::sql("1.0.4", "fails_at_commit", sql, None)),
    );
    for failing in failing_steps {
        let mut all = with_later.clone();
        all.push(failing);
        let err = migrator("1.0.4", all).run(&mut conn).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                Error::StepFailed {
                    dirty: false,
                    transactional: true,
                    source: StepError::Sql(_) | StepError::SqlAt { .. },
                    ..
                }
            ) && msg.starts_with(&format!("migration 1.0.4 `{}`", failing.name()))
                && msg.contains("neither its changes nor its history row were kept"),
            "{msg}"
        );
        assert_eq!(
            history::<D>(&mut conn, T).last().unwrap(),
            "1.0.3:up",
            "{msg}"
        );
        assert!(!log::<D>(&mut conn).contains(&"1.0.4".to_owned()), "{msg}");
        assert!(
            !D::tables(&mut conn).contains(&"parent".to_owned()),
            "{msg}"
        );
        let depth =
            <D::Conn as Connection>::TransactionManager::transaction_manager_status_mut(&mut conn)
                .transaction_depth();
        assert!(matches!(depth, Ok(None)), "{msg}");
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            c.batch_execute("INSERT INTO log VALUES ('after')")
        })
        .unwrap();
        conn.batch_execute("DELETE FROM log WHERE v = 'after'")
            .unwrap();
    }
    // Fixed, a rerun converges.
    let mut fixed = with_later;
    fixed.push(Script::sql(
        "1.0.4",
        "fixed",
        "INSERT INTO log VALUES ('1.0.4');",
        None,
    ));
    let report = migrator("1.0.4", fixed).run(&mut conn).unwrap();
    assert_eq!(versions(&report), ["up 1.0.4"]);
    assert_eq!(
        log::<D>(&mut conn),
        ["1.0.1", "1.0.1b", "1.0.2", "1.0.3", "1.0.4"]
    );
}

/// A step whose `COMMIT` fails (here a deferred foreign key; a full disk
/// fails the same way) is reported as that step's failure, by version,
/// name and direction, and keeps nothing.
#[test]
fn sqlite_a_commit_that_fails_names_its_step() {
    let db = support::Sqlite::create().unwrap();
    let mut conn = db.connect();
    conn.batch_execute("PRAGMA foreign_keys = ON").unwrap();
    let orphan = Script::sql(
        "1.0.1",
        "fails_at_commit",
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
         CREATE TABLE child (parent INTEGER REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n\
         INSERT INTO child VALUES (1);",
        None,
    );
    let err = migrator("1.0.1", vec![base(), orphan])
        .run(&mut conn)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::StepFailed {
                source: StepError::Transaction(_),
                dirty: false,
                ..
            }
        ) && msg
            .starts_with("migration 1.0.1 `fails_at_commit` (up) failed: its transaction failed")
            && msg.contains("FOREIGN KEY constraint failed")
            && msg.contains("neither its changes nor its history row were kept"),
        "{msg}"
    );
    assert_eq!(history::<support::Sqlite>(&mut conn, T), ["1.0.0:up"]);
    assert!(!support::Sqlite::tables(&mut conn).contains(&"child".to_owned()));
}

/// SQLite rolls a transaction back itself when some statements fail (`OR
/// ROLLBACK` conflicts, `RAISE(ROLLBACK)`, a full disk). An SQL step (whose
/// SQL cannot end its transaction: that is refused before it runs) that
/// meets it failed cleanly, alone or in atomic mode: nothing is kept and
/// nothing is marked in progress. Code may have ended the transaction
/// itself, so it is marked, as it must be.
#[test]
fn sqlite_a_step_that_sqlite_rolls_back_itself_fails_cleanly() {
    type D = support::Sqlite;
    let rolls_back = Script::sql(
        "1.0.1",
        "rolled_back",
        "CREATE TABLE u (x INTEGER UNIQUE);\n\
         INSERT INTO u VALUES (1);\n\
         INSERT OR ROLLBACK INTO u VALUES (1);",
        None,
    );
    for atomic in [false, true] {
        let db = D::create().unwrap();
        let mut conn = db.connect();
        let m = migrator("1.0.1", vec![base(), rolls_back]).atomic(atomic);
        let err = m.run(&mut conn).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(
                &err,
                Error::StepFailed {
                    dirty: false,
                    source: StepError::Sql(_) | StepError::SqlAt { .. },
                    ..
                }
            ) && msg.contains("UNIQUE constraint failed")
                && msg.contains(if atomic {
                    "the whole plan ran in one transaction and was rolled back"
                } else {
                    "neither its changes nor its history row were kept"
                }),
            "atomic {atomic}: {msg}"
        );
        assert!(
            !D::tables(&mut conn).contains(&"u".to_owned()),
            "atomic {atomic}"
        );
        if atomic {
            // Not even the tracking table is left.
            assert_eq!(D::tables(&mut conn), Vec::<String>::new());
        } else {
            assert_eq!(history::<D>(&mut conn, T), ["1.0.0:up"]);
        }
        // Nothing to resolve: the next run tries again.
        let again = m.run(&mut conn).unwrap_err();
        assert!(
            matches!(again, Error::StepFailed { dirty: false, .. }),
            "{again}"
        );
    }
    let db = D::create().unwrap();
    let mut conn = db.connect();
    let code_rolls_back = code::<diesel::SqliteConnection>(
        "1.0.1",
        "CREATE TABLE u (x INTEGER UNIQUE);\nINSERT INTO u VALUES (1);\nINSERT OR ROLLBACK INTO u VALUES (1);",
        "",
    );
    let err = migrator("1.0.1", vec![base(), code_rolls_back])
        .run(&mut conn)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StepFailed {
                dirty: true,
                source: StepError::EndedItsTransaction,
                ..
            }
        ),
        "{err}"
    );
}

/// A failed SQL step shows what PostgreSQL says beyond its message: the
/// detail (which key) and the hint (what to do).
#[cfg(feature = "postgres")]
#[test]
fn postgres_a_failed_step_shows_the_servers_detail_and_hint() {
    type D = support::Postgres;
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let duplicate = Script::sql(
        "1.0.0",
        "duplicate",
        "CREATE TABLE once (x INT UNIQUE); INSERT INTO once VALUES (1), (1);",
        None,
    );
    let err = migrator("1.0.0", vec![duplicate])
        .run(&mut conn)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("; detail: Key (x)=(1) already exists."),
        "{err}"
    );
    let unknown = Script::sql("1.0.0", "unknown", "SELECT no_such_function(1);", None);
    let err = migrator("1.0.0", vec![unknown]).run(&mut conn).unwrap_err();
    assert!(
        err.to_string().contains("; hint: No function matches"),
        "{err}"
    );
}

/// Where PostgreSQL says where its error is, the message names the line of
/// the step's SQL and shows it.
#[cfg(feature = "postgres")]
#[test]
fn postgres_a_failed_step_names_the_line_of_its_failing_statement() {
    type D = support::Postgres;
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let sql = "CREATE TABLE first (x INT);\n\n-- the next one is wrong\n    INSERT INTO no_such_table VALUES (1);\nCREATE TABLE never (x INT);";
    let err = migrator("1.0.0", vec![Script::sql("1.0.0", "third", sql, None)])
        .run(&mut conn)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            &err,
            Error::StepFailed {
                source: StepError::SqlAt { line: 4, .. },
                ..
            }
        ) && msg.contains("relation \"no_such_table\" does not exist")
            && msg.contains(
                "does not exist (at line 4 of its SQL: `INSERT INTO no_such_table VALUES (1);`); it ran in a transaction"
            ),
        "{msg}"
    );
    // Without a position (a constraint), the message is the server's.
    let duplicate = "CREATE TABLE once (x INT UNIQUE);\nINSERT INTO once VALUES (1), (1);";
    let err = migrator("1.0.0", vec![Script::sql("1.0.0", "dup", duplicate, None)])
        .run(&mut conn)
        .unwrap_err();
    assert!(!err.to_string().contains("at line"), "{err}");
}

/// A caller's `SET LOCAL search_path` around a run inside its transaction
/// ends with that transaction: the session is put back only where a step
/// changed it, so the run never turns the caller's local value into the
/// session's.
#[cfg(feature = "postgres")]
#[test]
fn postgres_a_callers_set_local_stays_local() {
    type D = support::Postgres;
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    let path = |conn: &mut diesel::PgConnection| {
        D::strings(conn, "SELECT current_setting('search_path') AS s")
    };
    let before = path(&mut conn);
    conn.transaction::<_, diesel::result::Error, _>(|c| {
        c.batch_execute("CREATE SCHEMA IF NOT EXISTS mine; SET LOCAL search_path TO mine, public")?;
        migrator("1.0.0", vec![base()]).run(c).unwrap();
        assert_eq!(path(c), ["mine, public"]);
        Ok(())
    })
    .unwrap();
    assert_eq!(path(&mut conn), before);
    // The log table landed where the caller's path put it.
    assert_eq!(
        D::strings(
            &mut conn,
            "SELECT table_schema AS s FROM information_schema.tables WHERE table_name = 'log'"
        ),
        ["mine"]
    );
}

/// What only a step sent as one message can meet (PostgreSQL): SQL that
/// ends the transaction the message opened, a history row the database
/// refuses, and the time the server measures.
#[cfg(feature = "postgres")]
#[test]
fn postgres_one_message_steps_report_what_became_of_them() {
    type D = support::Postgres;
    let Some(db) = D::create() else { return };
    let mut conn = db.connect();
    // What PostgreSQL measured: at least the SQL's own sleep.
    let sleeps = Script::sql("1.0.1", "sleeps", "SELECT pg_sleep(0.06);", None);
    migrator("1.0.1", vec![base(), sleeps])
        .run(&mut conn)
        .unwrap();
    let took = D::strings(
        &mut conn,
        &format!("SELECT duration_ms AS s FROM {T} WHERE version = '1.0.1'"),
    );
    let took: i64 = took[0].parse().unwrap();
    assert!((60..10_000).contains(&took), "{took}");

    // A row the database refuses (a constraint added by hand) is reported
    // as the history's failure, and nothing of the step is kept.
    conn.batch_execute(&format!(
        "ALTER TABLE {T} ADD CONSTRAINT no_1_0_2 CHECK (version <> '1.0.2')"
    ))
    .unwrap();
    let refused = Script::sql(
        "1.0.2",
        "refused",
        "INSERT INTO log VALUES ('1.0.2');",
        None,
    );
    let err = migrator("1.0.2", vec![base(), sleeps, refused])
        .run(&mut conn)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            &err,
            Error::StepFailed {
                dirty: false,
                source: StepError::Record(_),
                ..
            }
        ) && msg.contains("recording it in the history failed")
            && msg.contains("neither its changes nor its history row were kept"),
        "{msg}"
    );
    assert!(log::<D>(&mut conn).is_empty(), "{msg}");
    conn.batch_execute(&format!("ALTER TABLE {T} DROP CONSTRAINT no_1_0_2"))
        .unwrap();

    // SQL that ends the step's transaction. Where it committed first, what
    // ran before is kept, nothing after, and the step stays marked in
    // progress until someone resolves it; where it rolled back, nothing is
    // kept and nothing is marked. The connection works on either way.
    let depth = |conn: &mut diesel::PgConnection| {
        <diesel::PgConnection as Connection>::TransactionManager::transaction_manager_status_mut(
            conn,
        )
        .transaction_depth()
        .unwrap()
    };
    // Such SQL is refused when it is listed (and by `embed_sql!` when it
    // is built); these cases run it as if a check had missed it, which
    // only the hidden constructor of `embed_sql!`'s expansions allows.
    let unchecked = |sql: &'static str| {
        let checksum: &'static str =
            Box::leak(migrate::registry::sql_checksum(sql).into_boxed_str());
        Script::__sql(
            "1.0.2",
            "ends_its_transaction",
            sql,
            None,
            checksum,
            true,
            "tests/executor.rs",
            0,
            migrate::__private::Precomputed::compute("1.0.2", Some(checksum)),
        )
    };
    assert!(
        migrate::registry::Registry::new([Script::sql(
            "1.0.2",
            "ends_its_transaction",
            "INSERT INTO log VALUES ('before');\nCOMMIT;",
            None
        )])
        .is_err()
    );
    // (the SQL, whether the step is marked in progress, what is kept)
    let cases: [(&'static str, bool, &[&str]); 5] = [
        (
            "INSERT INTO log VALUES ('before');\nCOMMIT;\nINSERT INTO log VALUES ('after');",
            true,
            &["before"],
        ),
        (
            "INSERT INTO log VALUES ('before');\nEND;\nINSERT INTO no_such_table VALUES (1);",
            true,
            &["before"],
        ),
        // Nothing is kept here (what follows the ROLLBACK runs in the
        // message's implicit transaction, which the refused row ends), but
        // that cannot be told from the case below: marked, to be safe.
        (
            "INSERT INTO log VALUES ('before');\nROLLBACK;\nINSERT INTO log VALUES ('after');",
            true,
            &[],
        ),
        // The outside probe's case: the rollback hid the first part, a
        // commit kept the second.
        (
            "ROLLBACK;\nCREATE TABLE leaked (x INT);\nCOMMIT;\nCREATE TABLE also_leaked (x INT);",
            true,
            &[],
        ),
        (
            "INSERT INTO log VALUES ('before');\nROLLBACK;\nINSERT INTO no_such_table VALUES (1);",
            false,
            &[],
        ),
    ];
    for (sql, kept, left) in cases {
        let ends = unchecked(sql);
        let m = migrator("1.0.2", vec![base(), sleeps, ends]).__without_reading_sql();
        let err = m.run(&mut conn).unwrap_err();
        let msg = err.to_string();
        let Error::StepFailed { dirty, source, .. } = &err else {
            panic!("{msg}")
        };
        // A failure after a rollback is the failure's own (nothing to tell
        // apart from an ordinary one: nothing of the step is kept).
        let reported_as_ended = matches!(source, StepError::EndedItsTransaction);
        assert_eq!(*dirty, kept, "{sql}: {msg}");
        assert_eq!(reported_as_ended, kept, "{sql}: {msg}");
        assert!(
            msg.contains(if kept {
                "so it may be HALF-APPLIED"
            } else {
                "neither its changes nor its history row were kept"
            }),
            "{sql}: {msg}"
        );
        if sql.contains("leaked") {
            let tables = D::tables(&mut conn);
            assert!(tables.contains(&"leaked".to_owned()), "{tables:?}");
            conn.batch_execute("DROP TABLE leaked").unwrap();
        }
        assert_eq!(log::<D>(&mut conn), left, "{sql}");
        assert_eq!(depth(&mut conn), None, "{sql}");
        let rows = D::strings(
            &mut conn,
            &format!(
                "SELECT CONCAT(version, ':', dirty) AS s FROM {T} ORDER BY {}",
                D::CHANGE
            ),
        );
        let mut expected = vec!["1.0.0:f", "1.0.1:f"];
        if kept {
            expected.push("1.0.2:t");
        }
        assert_eq!(rows, expected, "{sql}");
        if kept {
            let refused = m.run(&mut conn).unwrap_err();
            assert!(matches!(refused, Error::Dirty { .. }), "{refused}");
            // Repaired by hand, then recorded as rolled back.
            conn.batch_execute("DELETE FROM log").unwrap();
            m.resolve(&mut conn, "1.0.2", Resolution::RolledBack)
                .unwrap();
        }
    }
}

on_every_backend!(
    upgrade_from_empty_runs_every_script_up_to_the_app_version_in_semver_order,
    a_second_run_with_the_same_version_is_a_no_op_that_takes_no_lock,
    upgrades_in_steps_across_application_versions,
    an_older_application_leaves_a_newer_database_alone_and_names_what_is_ahead,
    an_authorized_downgrade_runs_down_in_descending_order_once,
    a_downgrade_that_fails_part_way_resumes_under_the_same_authorization,
    an_authorization_that_reverts_nothing_is_not_spent,
    a_recorded_down_runs_outside_a_transaction_when_its_migration_did,
    the_refuse_policy_touches_nothing_even_with_work_pending,
    a_script_added_out_of_order_is_refused_then_allowed,
    a_downgrade_across_a_script_without_down_is_refused_then_skipped_on_request,
    sql_that_ends_its_transaction_is_refused_before_anything_runs,
    sql_that_one_dialect_reads_as_ending_its_transaction_is_refused_only_there,
    code_that_ends_its_transaction_leaves_its_step_marked_in_progress,
    atomic_code_that_ends_the_transaction_marks_every_step_it_ran,
    a_byte_order_mark_before_the_sql_is_not_sent_to_the_server,
    a_steps_session_settings_reach_neither_the_next_step_nor_the_history,
    a_failing_script_leaves_neither_its_effects_nor_its_row,
    a_failing_step_after_ddl_is_rolled_back_or_left_marked_in_progress,
    a_panicking_script_is_reported_rolled_back_and_the_lock_released,
    a_non_transactional_script_runs_outside_a_transaction_and_its_failure_says_so,
    a_step_resolved_as_completed_counts_as_applied,
    atomic_mode_rolls_back_the_whole_plan,
    an_edited_sql_migration_is_refused_but_line_endings_do_not_count,
    the_tracking_table_name_comes_from_the_configuration,
    a_table_name_carrying_sql_is_rejected_before_anything_runs,
    two_threads_migrating_at_once_apply_each_script_exactly_once,
    a_step_in_progress_in_another_instance_is_waited_for_not_refused,
    a_held_lock_times_out_others_and_dies_with_its_holder,
    the_dry_run_shows_the_steps_and_sql_and_changes_nothing,
    status_reports_every_known_and_applied_script,
    a_script_written_for_another_backend_is_refused_before_anything_runs,
    a_settled_database_without_its_state_row_is_checked_by_one_read_of_the_history,
    an_edit_of_the_history_by_hand_is_noticed_at_the_next_start_up,
    a_start_up_inside_the_callers_transaction_before_any_history_leaves_it_usable,
    a_settled_database_is_checked_by_its_state_row_alone,
    an_edit_of_any_history_row_by_hand_is_noticed_where_a_trigger_guards_the_state,
    any_difference_from_the_settled_state_falls_back_to_the_full_check,
    a_changed_script_under_a_settled_state_is_refused_as_before,
    every_change_to_the_history_leaves_the_state_row_true,
    a_table_named_like_the_state_table_is_refused_not_emptied,
    a_run_inside_the_callers_transaction_survives_a_missing_state_table,
    an_sql_step_is_one_message_where_the_backend_allows,
);
