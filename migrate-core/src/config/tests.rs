use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

/// Loads `files` (name, text) from a fresh directory with `vars` as the
/// process environment.
fn load_from(
    files: &[(&str, &str)],
    request: Request<'_>,
    vars: &[(&str, &str)],
) -> Result<Environment, ConfigError> {
    let dir = tempdir();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let result = load_with(&request, &dir, &|name| vars.get(name).cloned());
    std::fs::remove_dir_all(&dir).unwrap();
    result
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "migrate-config-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn msg(result: Result<Environment, ConfigError>) -> String {
    result
        .expect_err("expected a configuration error")
        .to_string()
}

const TOML: &str = r#"
default_env = "dev"

[dev]
url = "sqlite://dev.db"
table = "history"

[test]
driver = "sqlite"
database = "test.db"
atomic = true
lock_timeout = 30
migrations_dir = "db/migrations"

[prod]
driver = "postgres"
host = "db.internal"
port = 6432
user = "app"
password = { env = "PROD_DB_PASSWORD" }
database = "shop"
allow_out_of_order = true
"#;

const JSON: &str = r#"{
  "defaultEnv": "dev",
  "dev": { "driver": "sqlite3", "filename": "dev.db" },
  "test": { "driver": "pg", "host": "localhost", "database": "demoDB",
            "user": "postgres", "password": "password", "port": 5432,
            "schema": "public", "multipleStatements": true },
  "ci": { "driver": "pg", "host": {"ENV": "PGHOST"}, "database": "ci",
          "user": "ci", "password": {"ENV": "PGPASSWORD"}, "port": {"ENV": "PGPORT"} },
  "heroku": {"ENV": "HEROKU_URL"},
  "literal": "postgres://u:pw@h/d",
  "bad": { "driver": "oracle", "database": "x" },
  "lacking": { "driver": "mysql", "host": "localhost", "database": "x" }
}"#;

#[test]
fn the_default_environment_is_dev_and_its_url_names_the_driver() {
    let env = load_from(&[("migrate.toml", TOML)], Request::default(), &[]).unwrap();
    assert_eq!(env.name, "dev");
    assert_eq!(env.driver, Driver::Sqlite);
    assert_eq!(env.url.expose(), "sqlite://dev.db");
    assert_eq!(env.settings.table.as_deref(), Some("history"));
    assert!(matches!(env.origin, Origin::File(ref p) if p.ends_with("migrate.toml")));
}

#[test]
fn the_env_option_wins_over_migrate_env_which_wins_over_the_files_default() {
    let files = [("migrate.toml", TOML)];
    let by_var = load_from(&files, Request::default(), &[(ENV_VAR, "test")]).unwrap();
    assert_eq!(by_var.name, "test");
    let by_option = load_from(
        &files,
        Request {
            env: Some("dev"),
            ..Request::default()
        },
        &[(ENV_VAR, "test")],
    )
    .unwrap();
    assert_eq!(by_option.name, "dev");
}

#[test]
fn a_section_of_parts_gives_its_settings_and_a_sqlite_path() {
    let env = load_from(
        &[("migrate.toml", TOML)],
        Request::default(),
        &[(ENV_VAR, "test")],
    )
    .unwrap();
    assert_eq!(env.url.expose(), "test.db");
    assert_eq!(env.settings.atomic, Some(true));
    assert_eq!(env.settings.lock_timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        env.settings.migrations_dir.as_deref(),
        Some(Path::new("db/migrations"))
    );
}

#[test]
fn a_value_from_the_environment_is_interpolated_and_the_password_never_shows() {
    let env = load_from(
        &[("migrate.toml", TOML)],
        Request {
            env: Some("prod"),
            ..Request::default()
        },
        &[("PROD_DB_PASSWORD", "s3cr3t/pa:ss")],
    )
    .unwrap();
    assert_eq!(env.driver, Driver::Postgres);
    assert_eq!(
        env.url.expose(),
        "postgres://app:s3cr3t%2Fpa%3Ass@db.internal:6432/shop"
    );
    assert_eq!(
        env.url.to_string(),
        "postgres://app:***@db.internal:6432/shop"
    );
    assert!(!format!("{env:?}").contains("s3cr3t"));
    assert_eq!(
        env.url
            .redact("FATAL: password s3cr3t/pa:ss or s3cr3t%2Fpa%3Ass"),
        "FATAL: password *** or ***"
    );
    assert_eq!(env.settings.allow_out_of_order, Some(true));
}

#[test]
fn an_unset_variable_is_named_with_the_file_environment_and_key() {
    let e = msg(load_from(
        &[("migrate.toml", TOML)],
        Request {
            env: Some("prod"),
            ..Request::default()
        },
        &[],
    ));
    assert!(e.ends_with("migrate.toml, environment `prod`, key `password`: the variable `PROD_DB_PASSWORD` is not set"), "{e}");
}

#[test]
fn an_unknown_environment_lists_the_ones_the_file_defines() {
    let e = msg(load_from(
        &[("migrate.toml", TOML)],
        Request {
            env: Some("staging"),
            ..Request::default()
        },
        &[],
    ));
    assert!(
        e.ends_with("migrate.toml: no environment `staging`; the file defines `dev`, `prod`, `test`; choose one with --env or MIGRATE_ENV"),
        "{e}"
    );
}

#[test]
fn an_unknown_key_in_migrate_toml_is_an_error_naming_it() {
    let e = msg(load_from(
        &[("migrate.toml", "[dev]\nurl = \"a.db\"\ntabel = \"x\"\n")],
        Request::default(),
        &[],
    ));
    assert!(
        e.contains(
            "migrate.toml, environment `dev`: unknown key `tabel`; known keys are url, driver"
        ),
        "{e}"
    );
}

#[test]
fn malformed_files_are_reported_with_their_line() {
    let e = msg(load_from(
        &[("migrate.toml", "[dev]\nurl = \"a.db\"\nport = \n")],
        Request::default(),
        &[],
    ));
    assert!(
        e.contains("migrate.toml is malformed: ") && e.ends_with("(line 3)"),
        "{e}"
    );
    let e = msg(load_from(
        &[("database.json", "{\n \"dev\": {\"driver\": \"pg\",}\n}")],
        Request::default(),
        &[],
    ));
    assert!(
        e.contains("database.json is malformed: ") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn database_json_is_read_as_db_migrate_writes_it() {
    let files = [("database.json", JSON)];
    let dev = load_from(&files, Request::default(), &[]).unwrap();
    assert_eq!((dev.name.as_str(), dev.driver), ("dev", Driver::Sqlite));
    assert_eq!(dev.url.expose(), "dev.db");

    // db-migrate's own example, with options of its own that we ignore.
    let test = load_from(
        &files,
        Request {
            env: Some("test"),
            ..Request::default()
        },
        &[],
    )
    .unwrap();
    assert_eq!(test.driver, Driver::Postgres);
    assert_eq!(
        test.url.expose(),
        "postgres://postgres:password@localhost:5432/demoDB"
    );
    assert_eq!(
        test.url.to_string(),
        "postgres://postgres:***@localhost:5432/demoDB"
    );
}

#[test]
fn database_json_env_objects_read_variables_for_values_and_whole_urls() {
    let files = [("database.json", JSON)];
    let vars = [
        ("PGHOST", "10.0.0.7"),
        ("PGPASSWORD", "hunter22"),
        ("PGPORT", "5433"),
        ("HEROKU_URL", "postgres://h:topsecret@host/db"),
    ];
    let ci = load_from(
        &files,
        Request {
            env: Some("ci"),
            ..Request::default()
        },
        &vars,
    )
    .unwrap();
    assert_eq!(ci.url.expose(), "postgres://ci:hunter22@10.0.0.7:5433/ci");
    let heroku = load_from(
        &files,
        Request {
            env: Some("heroku"),
            ..Request::default()
        },
        &vars,
    )
    .unwrap();
    assert_eq!(heroku.url.to_string(), "postgres://h:***@host/db");
    let literal = load_from(
        &files,
        Request {
            env: Some("literal"),
            ..Request::default()
        },
        &vars,
    )
    .unwrap();
    assert_eq!(literal.url.to_string(), "postgres://u:***@h/d");
}

#[test]
fn database_json_default_env_may_come_from_a_variable() {
    let json = r#"{"defaultEnv": {"ENV": "NODE_ENV"}, "production": "prod.db", "dev": "dev.db"}"#;
    let env = load_from(
        &[("database.json", json)],
        Request::default(),
        &[("NODE_ENV", "production")],
    )
    .unwrap();
    assert_eq!(env.name, "production");
    assert_eq!(env.url.expose(), "prod.db");
    // Unset, or empty, as db-migrate reads it: the default environment.
    for vars in [&[][..], &[("NODE_ENV", "")][..]] {
        let env = load_from(&[("database.json", json)], Request::default(), vars).unwrap();
        assert_eq!((env.name.as_str(), env.url.expose()), ("dev", "dev.db"));
    }
}

#[test]
fn an_unknown_driver_is_named_with_the_accepted_ones() {
    let e = msg(load_from(
        &[("database.json", JSON)],
        Request {
            env: Some("bad"),
            ..Request::default()
        },
        &[],
    ));
    assert!(
        e.ends_with("database.json, environment `bad`, key `driver`: unknown driver `oracle`; expected one of sqlite, sqlite3, postgres, postgresql, pg, mysql, mariadb"),
        "{e}"
    );
}

#[test]
fn an_explicit_url_overrides_the_file_but_keeps_its_settings() {
    let files = [("migrate.toml", TOML)];
    let env = load_from(
        &files,
        Request::default(),
        &[(DATABASE_URL_VAR, "postgres://x:pw12@h/d")],
    )
    .unwrap();
    assert_eq!(
        (env.driver, env.origin.clone()),
        (Driver::Postgres, Origin::Variable)
    );
    assert_eq!(env.settings.table.as_deref(), Some("history"));
    let env = load_from(
        &files,
        Request {
            database_url: Some("other.db"),
            ..Request::default()
        },
        &[(DATABASE_URL_VAR, "postgres://x:pw12@h/d")],
    )
    .unwrap();
    assert_eq!((env.driver, env.origin), (Driver::Sqlite, Origin::Option));
    assert_eq!(env.url.expose(), "other.db");
}

#[test]
fn an_explicit_url_does_not_excuse_an_environment_that_does_not_exist() {
    let e = msg(load_from(
        &[("migrate.toml", TOML)],
        Request {
            env: Some("qa"),
            database_url: Some("x.db"),
            ..Request::default()
        },
        &[],
    ));
    assert!(e.contains("no environment `qa`"), "{e}");
}

#[test]
fn no_file_and_no_url_says_how_to_configure() {
    let e = msg(load_from(&[], Request::default(), &[]));
    assert!(
        e.starts_with(
            "no database configured: pass --database-url, set DATABASE_URL, or write migrate.toml"
        ),
        "{e}"
    );
    let env = load_from(&[], Request::default(), &[(DATABASE_URL_VAR, "a.db")]).unwrap();
    assert_eq!((env.name.as_str(), env.url.expose()), ("dev", "a.db"));
}

#[test]
fn a_missing_explicit_config_file_is_an_error() {
    let e = msg(load_from(
        &[],
        Request {
            config: Some(Path::new("nope.toml")),
            ..Request::default()
        },
        &[],
    ));
    assert!(
        e.starts_with("cannot read the configuration file ") && e.contains("nope.toml"),
        "{e}"
    );
}

#[test]
fn environment_names_that_are_not_plain_are_rejected() {
    for bad in ["prod; DROP TABLE x", "../etc", "", "a b", &"x".repeat(65)] {
        let e = msg(load_from(
            &[("migrate.toml", TOML)],
            Request {
                env: Some(bad),
                ..Request::default()
            },
            &[],
        ));
        assert!(e.contains("is not a valid environment name"), "{bad}: {e}");
    }
}

#[test]
fn wrong_value_types_and_ports_are_reported() {
    let e = msg(load_from(
        &[(
            "migrate.toml",
            "[dev]\nurl = \"a.db\"\natomic = \"maybe\"\n",
        )],
        Request::default(),
        &[],
    ));
    assert!(
        e.ends_with("environment `dev`, key `atomic`: expected true or false"),
        "{e}"
    );
    let e = msg(load_from(
        &[(
            "migrate.toml",
            "[dev]\ndriver = \"pg\"\ndatabase = \"d\"\nport = 70000\n",
        )],
        Request::default(),
        &[],
    ));
    assert!(
        e.ends_with("key `port`: expected a port number (1-65535)"),
        "{e}"
    );
    let e = msg(load_from(
        &[("migrate.toml", "[dev]\ndriver = \"pg\"\n")],
        Request::default(),
        &[],
    ));
    assert!(e.contains("missing key `database`"), "{e}");
}

#[test]
fn a_mysql_environment_builds_a_mysql_url() {
    let env = load_from(
        &[("database.json", JSON)],
        Request {
            env: Some("lacking"),
            ..Request::default()
        },
        &[],
    )
    .unwrap();
    assert_eq!(
        (env.driver, env.url.expose()),
        (Driver::Mysql, "mysql://localhost/x")
    );
}

#[test]
fn libpq_keyword_passwords_are_masked_too() {
    let url = DatabaseUrl::new("host=h dbname=d password=swordfish");
    assert_eq!(url.to_string(), "host=h dbname=d password=***");
    let url = DatabaseUrl::new("postgres://h/d?password=swordfish&sslmode=require");
    assert_eq!(
        url.to_string(),
        "postgres://h/d?password=***&sslmode=require"
    );
}

#[test]
fn a_password_drivers_would_read_differently_is_masked_whole_and_refused() {
    // libpq ends the user information at the first `@` or `/`; RFC 3986 at
    // the last `@`. Each of these names a different password to each.
    for url in [
        "postgres://u:p#zq/w?rd@h/db",
        "postgres://u:p@zq@h/db",
        "postgres://u:p/zq@h/db",
        "postgres://u:p?zq@h/db",
        "postgres://u:p?x=zq@h/db",
        "mysql://u:pazq/@h/db",
    ] {
        let parsed = DatabaseUrl::new(url);
        let scheme = url.split_once("://").unwrap().0;
        assert_eq!(parsed.to_string(), format!("{scheme}://***"), "{url}");
        assert!(parsed.problem().is_some(), "{url}");
        for shown in [format!("{parsed:?}"), parsed.redact(url)] {
            assert!(!shown.contains("zq"), "{shown}");
        }
        let request = Request {
            database_url: Some(url),
            ..Request::default()
        };
        let e = load_from(&[], request, &[]).unwrap_err();
        assert!(
            e.to_string().contains("ambiguous") && e.to_string().contains("%40"),
            "{e}"
        );
        assert!(!e.to_string().contains("zq"), "{e}");
    }
    let e = DatabaseUrl::new("postgres://h/db?password=p%40ss+x");
    assert_eq!(e.to_string(), "postgres://h/db?password=***");
    assert!(e.problem().is_none());
    let request = Request {
        database_url: Some("postgres://u:hunter22@h/db"),
        ..Request::default()
    };
    assert!(!format!("{request:?}").contains("hunter22"));
}

#[test]
fn an_at_sign_in_a_query_value_leaves_the_password_masked() {
    let url = DatabaseUrl::new("postgres://u@h/db?password=s3cret&user=app@corp");
    assert_eq!(
        url.to_string(),
        "postgres://u@h/db?password=***&user=app@corp"
    );
    assert_eq!(
        url.redact("FATAL: password s3cret rejected"),
        "FATAL: password *** rejected"
    );
    assert!(url.problem().is_none());
}

#[test]
fn a_url_under_any_scheme_or_none_is_masked() {
    for (url, shown) in [
        (
            "jdbc:postgresql://h/db?user=u&password=pw1234",
            "jdbc:postgresql://h/db?user=u&password=***",
        ),
        ("u:pw1234@h/db", "***@h/db"),
        ("u@h/db?password=pw1234", "***@h/db?***"),
        ("/var/lib/app.db", "/var/lib/app.db"),
        (
            "sqlite://file:/tmp/a.db?mode=ro",
            "sqlite://file:/tmp/a.db?***",
        ),
        ("sqlite:///tmp/a.db", "sqlite:///tmp/a.db"),
    ] {
        let parsed = DatabaseUrl::new(url);
        assert_eq!(parsed.to_string(), shown, "{url}");
        assert!(!parsed.redact(url).contains("pw1234"), "{url}");
    }
}

#[test]
fn a_raw_ampersand_in_a_query_password_is_refused() {
    let url = DatabaseUrl::new("postgres://h/db?password=ab&cd12&sslmode=require");
    assert_eq!(url.to_string(), "postgres://***");
    assert!(url.problem().is_some());
    // A parameter that drivers know may follow a secret.
    let url = DatabaseUrl::new("postgres://h/db?password=ab&sslmode=require");
    assert_eq!(
        url.to_string(),
        "postgres://h/db?password=***&sslmode=require"
    );
}

#[test]
fn a_url_that_names_no_known_driver_is_refused_not_taken_for_a_file() {
    for url in ["host=h dbname=d password=x", "oracle://h/db"] {
        let e = msg(load_from(
            &[],
            Request {
                database_url: Some(url),
                ..Request::default()
            },
            &[],
        ));
        assert!(
            e.starts_with("--database-url, environment `dev`: cannot tell the driver from the URL"),
            "{e}"
        );
        assert!(!e.contains("password=x"), "{e}");
    }
    // With the driver said, libpq's form is accepted.
    let env = load_from(
        &[(
            "migrate.toml",
            "[dev]\ndriver = \"pg\"\nurl = \"host=h dbname=d\"\n",
        )],
        Request::default(),
        &[],
    )
    .unwrap();
    assert_eq!(env.driver, Driver::Postgres);
    let e = msg(load_from(
        &[(
            "migrate.toml",
            "[dev]\ndriver = \"sqlite\"\nurl = \"postgres://h/d\"\n",
        )],
        Request::default(),
        &[],
    ));
    assert!(
        e.ends_with(
            "key `url`: expected a sqlite URL, since `driver` is `sqlite` (the URL names postgres)"
        ),
        "{e}"
    );
}

#[test]
fn migrate_toml_default_env_may_come_from_a_variable() {
    let toml = "default_env = { env = \"APP_ENV\" }\n[dev]\nurl = \"d.db\"\n[qa]\nurl = \"q.db\"\n";
    let env = load_from(
        &[("migrate.toml", toml)],
        Request::default(),
        &[("APP_ENV", "qa")],
    )
    .unwrap();
    assert_eq!((env.name.as_str(), env.url.expose()), ("qa", "q.db"));
}

#[test]
fn a_driver_not_built_in_names_the_feature_that_builds_it() {
    for (driver, feature) in [
        (Driver::Mysql, "mysql"),
        (Driver::Postgres, "postgres"),
        (Driver::Sqlite, "sqlite"),
    ] {
        let err = ConfigError::DriverNotBuilt {
            origin: Origin::File("database.json".into()),
            env: "dev".to_owned(),
            driver,
        };
        assert_eq!(
            err.to_string(),
            format!(
                "database.json, environment `dev`: driver `{feature}` is not built into this binary; build it with the `{feature}` feature of `migrate`"
            )
        );
    }
}

#[test]
fn an_environment_sets_the_start_up_policy_and_a_downgrade_authorization() {
    let toml = "[dev]\nurl = \"a.db\"\nwhen_ahead = \"refuse\"\n\n[rollback]\nurl = \"a.db\"\nauthorize_downgrade_to = { env = \"TARGET\" }\n";
    let env = load_from(&[("migrate.toml", toml)], Request::default(), &[]).unwrap();
    assert_eq!(env.settings.when_ahead, Some(crate::WhenAhead::Refuse));
    assert_eq!(env.settings.authorize_downgrade_to, None);
    let env = load_from(
        &[("migrate.toml", toml)],
        Request::default(),
        &[(ENV_VAR, "rollback"), ("TARGET", "1.0.0")],
    )
    .unwrap();
    assert_eq!(env.settings.when_ahead, None);
    assert_eq!(
        env.settings.authorize_downgrade_to.as_deref(),
        Some("1.0.0")
    );
    let e = msg(load_from(
        &[(
            "migrate.toml",
            "[dev]\nurl = \"a.db\"\nwhen_ahead = \"ignore\"\n",
        )],
        Request::default(),
        &[],
    ));
    assert!(
        e.ends_with("environment `dev`, key `when_ahead`: expected `tolerate` or `refuse`"),
        "{e}"
    );
}

#[test]
fn a_keyword_password_with_spaces_around_its_equals_sign_is_masked() {
    let url =
        DatabaseUrl::new("host=127.0.0.1 user=pwuser password = Hunter2Secret dbname=postgres");
    assert_eq!(
        url.to_string(),
        "host=127.0.0.1 user=pwuser password=*** dbname=postgres"
    );
    assert_eq!(
        url.redact("FATAL: invalid password Hunter2Secret"),
        "FATAL: invalid password ***"
    );
}

#[test]
fn a_quoted_keyword_password_is_masked_whole() {
    let url = DatabaseUrl::new(r"host=h password='Hunter2 Secret Words' sslpassword='it\'s' x=1");
    assert_eq!(url.to_string(), "host=h password=*** sslpassword=*** x=1");
    assert_eq!(
        url.redact("error near 'Hunter2 Secret Words' and it's"),
        "error near *** and ***"
    );
}

#[test]
fn every_secret_parameter_of_a_url_query_is_masked() {
    let url = DatabaseUrl::new(
        "postgres://u@h/db?sslmode=require&sslpassword=k3y&Password=p4ss&access_token=t0k",
    );
    assert_eq!(
        url.to_string(),
        "postgres://u@h/db?sslmode=require&sslpassword=***&Password=***&access_token=***"
    );
}

#[test]
fn masking_replaces_fields_and_whole_words_never_parts_of_words() {
    // A password that is also the scheme and the user name.
    let url = DatabaseUrl::new("postgres://postgres:postgres@127.0.0.1:52835/blog_json");
    let shown = "postgres://postgres:***@127.0.0.1:52835/blog_json";
    assert_eq!(url.to_string(), shown);
    assert_eq!(
        url.redact(&format!("database {shown}")),
        format!("database {shown}")
    );
    // A one-letter password mangles nothing else.
    let url = DatabaseUrl::new("postgres://u:s@h/db");
    assert_eq!(url.to_string(), "postgres://u:***@h/db");
    let error = "password authentication failed for user \"postgres\" (sslmode is set)";
    assert_eq!(url.redact(error), error);
    assert_eq!(url.redact("password: s"), "password: ***");
    // The whole URL quoted by a driver becomes its masked form.
    assert_eq!(
        url.redact("cannot reach postgres://u:s@h/db"),
        "cannot reach postgres://u:***@h/db"
    );
}

#[test]
fn a_keyword_string_that_does_not_parse_is_not_shown() {
    let url = DatabaseUrl::new("host=h password='unterminated");
    assert!(!url.to_string().contains("unterminated"), "{url}");
    assert!(!format!("{url:?}").contains("unterminated"));
}

#[test]
fn the_configuration_is_found_from_any_directory_of_the_project() {
    let root = tempdir();
    std::fs::write(root.join("Cargo.toml"), "[package]\n").unwrap();
    std::fs::write(root.join(TOML_FILE), TOML).unwrap();
    let src = root.join("src").join("bin");
    std::fs::create_dir_all(&src).unwrap();
    assert_eq!(config_dir(&src).as_deref(), Some(root.as_path()));
    assert_eq!(config_dir(&root).as_deref(), Some(root.as_path()));
    // A database.json is found the same way; migrate.toml wins beside it.
    std::fs::remove_file(root.join(TOML_FILE)).unwrap();
    std::fs::write(root.join(JSON_FILE), "{}").unwrap();
    assert_eq!(config_dir(&src).as_deref(), Some(root.as_path()));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_search_stops_at_the_outermost_project() {
    let outside = tempdir();
    // A configuration above the project is not the project's.
    std::fs::write(outside.join(TOML_FILE), TOML).unwrap();
    let project = outside.join("project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("Cargo.toml"), "[package]\n").unwrap();
    assert_eq!(config_dir(&project.join("src")), None);
    // Outside any project, only the directory itself is looked at.
    let loose = outside.join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    assert_eq!(config_dir(&loose), None);
    assert_eq!(config_dir(&outside).as_deref(), Some(outside.as_path()));
    std::fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn a_relative_sqlite_path_is_put_under_the_configurations_directory() {
    let up = Path::new("../..");
    let cases = [
        ("dev.db", "../../dev.db"),
        ("sqlite://dev.db", "sqlite://../../dev.db"),
        ("sqlite:data/dev.db", "sqlite:../../data/dev.db"),
        ("file:dev.db?mode=ro", "file:../../dev.db?mode=ro"),
        (
            "sqlite://file:dev.db?mode=ro",
            "sqlite://file:../../dev.db?mode=ro",
        ),
        ("/srv/app.db", "/srv/app.db"),
        ("sqlite:///srv/app.db", "sqlite:///srv/app.db"),
        (":memory:", ":memory:"),
        ("sqlite://:memory:", "sqlite://:memory:"),
    ];
    for (url, expected) in cases {
        assert_eq!(rebase_sqlite(url, up), expected, "{url}");
    }
}
