//! Property tests over every parsing surface that takes outside input: the
//! configuration files (`migrate.toml`, `database.json`), version strings
//! (from the environment, the command line and the database), SQL folder
//! names and database URLs. Arbitrary input must give a value or an error,
//! never a panic, and what is accepted must keep its invariants.
//!
//! `PROPTEST_CASES=100000 cargo test -p migrate-core fuzz` runs them longer
//! (docs/reliability.md records such a run).

use std::collections::HashMap;
use std::path::PathBuf;

use proptest::prelude::*;

use crate::config::{DatabaseUrl, Driver, Request, load_with};
use crate::{Version, parse_folder_name, resolve_app_version_from};

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "migrate-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `text` as `file` with `vars` set and `env` asked for. The result
/// may be anything but a panic.
fn load(file: &str, text: &str, env: Option<&str>, vars: &HashMap<String, String>) {
    let dir = tempdir();
    std::fs::write(dir.join(file), text).unwrap();
    let request = Request {
        config: None,
        env,
        database_url: None,
    };
    let result = load_with(&request, &dir, &|name| vars.get(name).cloned());
    std::fs::remove_dir_all(&dir).unwrap();
    if let Ok(loaded) = result {
        // Whatever was accepted can be shown without panicking.
        let _ = format!("{} {:?} {}", loaded.url, loaded.url, loaded.driver);
    }
}

/// Keys the loaders know (their own list), and a few they do not, so that
/// generated files reach deep into the loaders instead of failing at the
/// first key.
fn keys() -> Vec<&'static str> {
    let mut keys = crate::config::file::TOML_KEYS.to_vec();
    keys.extend(["ENV", "env", "verbose", "schema", "x"]);
    keys
}

/// Values of the shapes the files hold: text (drivers, URLs, paths,
/// versions and junk), numbers, booleans, `{"ENV": ..}` and arrays.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "pg",
            "sqlite3",
            "mysql",
            "postgres",
            "oracle",
            "dev.db",
            "postgres://u:p@h/d",
            "mysql://u:p#x@h:1/d",
            "1.0.2",
            "v1",
            "",
            "X_VAR",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys()), inner), 0..6).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A `database.json`: environments holding generated objects, and maybe
/// `defaultEnv`.
fn database_json() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            (
                prop::sample::select(vec!["dev", "test", "prod", "defaultEnv", "ENV", "dev'; --"]),
                json_value(),
            ),
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(envs, pretty)| {
            let object: serde_json::Map<String, serde_json::Value> =
                envs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let value = serde_json::Value::Object(object);
            if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                value.to_string()
            }
        })
}

/// A TOML value's text: strings (escaped), numbers, booleans,
/// `{ env = "..." }`, arrays.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "\"sqlite://dev.db\"",
            "\"postgres\"",
            "\"mysql\"",
            "\"1.0.0\"",
            "\"\"",
            "{ env = \"X_VAR\" }",
            "{ env = 3 }",
            "{ other = \"x\" }",
            "[1, 2]",
            "1e400",
            "-1",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
    ]
}

/// A `migrate.toml`: maybe `default_env`, then sections of known and
/// unknown keys.
fn migrate_toml() -> impl Strategy<Value = String> {
    (
        prop::option::of(toml_value()),
        prop::collection::vec(
            (
                prop::sample::select(vec!["dev", "test", "prod", "a b", "dev.x"]),
                prop::collection::vec((prop::sample::select(keys()), toml_value()), 0..6),
            ),
            0..4,
        ),
    )
        .prop_map(|(default_env, sections)| {
            let mut text = String::new();
            if let Some(v) = default_env {
                text.push_str(&format!("default_env = {v}\n"));
            }
            for (name, keys) in sections {
                text.push_str(&format!("[{name:?}]\n"));
                for (k, v) in keys {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            text
        })
}

fn vars() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(
        prop::sample::select(vec!["X_VAR", "NODE_ENV", "DATABASE_URL", "MIGRATE_ENV"])
            .prop_map(str::to_owned),
        prop_oneof![
            any::<String>(),
            Just("dev".to_owned()),
            Just("postgres://a:b@c/d".to_owned()),
        ],
        0..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_arbitrary_text_as_a_config_file_is_an_error_or_a_value_never_a_panic(
        text in any::<String>(),
        json in any::<bool>(),
        env in prop::option::of(any::<String>()),
    ) {
        let file = if json { "database.json" } else { "migrate.toml" };
        load(file, &text, env.as_deref(), &HashMap::new());
    }

    #[test]
    fn fuzz_generated_database_json_never_panics(
        text in database_json(),
        env in prop::option::of(prop::sample::select(vec!["dev", "test", "prod", "ENV"])),
        vars in vars(),
    ) {
        load("database.json", &text, env, &vars);
    }

    #[test]
    fn fuzz_generated_migrate_toml_never_panics(
        text in migrate_toml(),
        env in prop::option::of(prop::sample::select(vec!["dev", "test", "prod"])),
        vars in vars(),
    ) {
        load("migrate.toml", &text, env, &vars);
    }

    #[test]
    fn fuzz_a_version_string_parses_to_itself_or_is_refused(text in any::<String>()) {
        if let Ok(v) = Version::parse(&text) {
            prop_assert_eq!(v.to_string(), text.clone());
            prop_assert_eq!(Version::parse(&v.to_string()).unwrap(), v);
        }
    }

    #[test]
    fn fuzz_version_like_strings_parse_to_themselves_or_are_refused(
        text in "[v ]?[0-9]{1,3}(\\.[0-9x]{1,3}){0,3}(-[0-9A-Za-z.]{0,6})?(\\+[0-9A-Za-z._]{0,6})?[ \n]?",
    ) {
        if let Ok(v) = Version::parse(&text) {
            prop_assert_eq!(v.to_string(), text);
        }
    }

    #[test]
    fn fuzz_the_application_version_from_the_environment_is_used_whole_or_refused_by_name(
        env in any::<String>(),
    ) {
        match resolve_app_version_from(None, Some(&env), "0.1.0") {
            Ok(app) => prop_assert_eq!(app.version.to_string(), env),
            Err(e) => prop_assert!(e.to_string().starts_with("APPLICATION_VERSION=`")),
        }
    }

    #[test]
    fn fuzz_a_folder_name_splits_into_a_version_and_a_name_that_rebuild_it(
        name in prop_oneof![
            any::<String>(),
            "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}(-[a-z0-9.]{0,4})?(\\+[a-z0-9.]{0,4})?_[a-z_]{0,8}",
        ],
    ) {
        if let Ok((version, rest)) = parse_folder_name(&name) {
            prop_assert!(!rest.is_empty());
            prop_assert_eq!(format!("{version}_{rest}"), name);
        }
    }

    #[test]
    fn fuzz_a_url_never_shows_its_password(
        user in "[a-z]{1,8}",
        password in "[^*\u{0}]{1,16}",
        host in prop_oneof![Just("localhost".to_owned()), Just("127.0.0.1".to_owned()), any::<String>()],
        database in any::<String>(),
        mysql in any::<bool>(),
    ) {
        let driver = if mysql { Driver::Mysql } else { Driver::Postgres };
        if let Ok(url) = DatabaseUrl::from_parts(driver, &host, Some(5432), Some(&user), Some(&password), &database) {
            // Debug shows exactly the masked text (quoted and escaped), so
            // checking Display covers it.
            prop_assert_eq!(format!("{url:?}"), format!("DatabaseUrl({:?})", url.to_string()));
            // What is shown is the URL with its password field, and only
            // that, replaced.
            let (scheme, rest) = url.expose().split_once("://").unwrap();
            let (userinfo, after) = rest.rsplit_once('@').unwrap();
            let (user, encoded) = userinfo.split_once(':').unwrap();
            prop_assert_eq!(url.to_string(), format!("{scheme}://{user}:***@{after}"));
            prop_assert_eq!(url.redact(url.expose()), url.to_string());
            // Neither form of the password shows, unless the other fields
            // happen to hold its text.
            let others = format!("{scheme}://{user}:@{after}");
            for secret in [password.as_str(), encoded] {
                if !others.contains(secret) && !"***".contains(secret) {
                    prop_assert!(!url.to_string().contains(secret), "{url}");
                }
            }
        }
    }

    /// A URL as a user writes it by hand: a password and query values with
    /// any printable character, raw (`@`, `/`, `?`, `#`, `&`, `:` and `=`
    /// included), under any scheme or none. No four characters in a row of a
    /// secret show, in `Display`, in `Debug` or in a driver's message
    /// quoting the URL, unless the rest of the URL holds them too; a URL
    /// whose password drivers would read differently has a problem and is
    /// masked whole.
    #[test]
    fn fuzz_a_url_written_by_hand_never_shows_its_secrets(
        scheme in prop_oneof![Just("postgres"), Just("mysql"), Just("jdbc:postgresql"), Just("")],
        user in "[a-z]{1,6}",
        password in prop::option::of("[!-)+-~]{4,12}"),
        host in "[a-z]{1,6}(:[0-9]{1,4})?",
        path in "(/[a-z_]{0,6})?",
        params in prop::collection::vec(("[a-z]{1,6}", "[a-z0-9]{0,6}"), 0..3),
        query_secret in prop::option::of((
            prop_oneof![Just("password"), Just("sslpassword"), Just("Token")],
            "[!-)+-~]{4,12}",
        )),
    ) {
        // (`user://...` is a URL, with a scheme, whatever was meant.)
        prop_assume!(!scheme.is_empty() || !password.as_ref().is_some_and(|p| p.starts_with("//")));
        // Without a scheme, as some write a URL for a driver that takes one.
        let mut text = if scheme.is_empty() { user.clone() } else { format!("{scheme}://{user}") };
        if let Some(p) = &password {
            text += &format!(":{p}");
        }
        text += &format!("@{host}{path}");
        let mut query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some((key, value)) = &query_secret {
            query.insert(query.len() / 2, format!("{key}={value}"));
        }
        if !query.is_empty() {
            text += &format!("?{}", query.join("&"));
        }
        let url = DatabaseUrl::new(text.clone());
        let shown = [url.to_string(), format!("{url:?}"), url.redact(&text)];
        if let Some(problem) = url.problem() {
            prop_assert_eq!(url.to_string(), format!("{scheme}://***"), "{}", problem);
        }
        for secret in password.iter().chain(query_secret.iter().map(|(_, v)| v)) {
            let others = text.replace(secret.as_str(), "");
            let chars: Vec<char> = secret.chars().collect();
            for window in chars.windows(4) {
                let window: String = window.iter().collect();
                if !others.contains(&window) {
                    for s in &shown {
                        prop_assert!(!s.contains(&window), "`{}` shows `{}` of {}", s, window, text);
                    }
                }
            }
        }
    }

    /// libpq's keyword form, written with its quoting (values quoted or
    /// escaped, spaces around `=`, `=` and quotes inside values): what is
    /// shown is every field as written, but each secret one replaced whole
    /// (so no part of a secret can show).
    #[test]
    fn fuzz_a_keyword_string_shows_every_field_but_its_secrets(
        pairs in prop::collection::vec(
            (
                prop_oneof![Just("host"), Just("dbname"), Just("user"), Just("options"), Just("password"), Just("sslpassword")],
                "[ -~]{0,12}",
                any::<bool>(),
                "[ ]{0,2}",
                "[ ]{0,2}",
            ),
            1..6,
        ),
    ) {
        // A value libpq reads back as `value`: quoted, or bare with its
        // special characters escaped (an empty one must be quoted).
        let write = |value: &str, quoted: bool| {
            if quoted || value.is_empty() {
                format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
            } else {
                value
                    .chars()
                    .map(|c| if c == ' ' || c == '\\' || c == '\'' { format!("\\{c}") } else { c.to_string() })
                    .collect()
            }
        };
        let text = pairs
            .iter()
            .map(|(key, value, quoted, before, after)| format!("{key}{before}={after}{}", write(value, *quoted)))
            .collect::<Vec<_>>()
            .join(" ");
        let url = DatabaseUrl::new(text.clone());
        let shown = url.to_string();
        let expected = pairs
            .iter()
            .map(|(key, value, quoted, _, _)| {
                if key.contains("password") {
                    format!("{key}=***")
                } else {
                    format!("{key}={}", write(value, *quoted))
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        prop_assert_eq!(&shown, &expected, "from {}", text);
        // A driver quoting the whole string shows the same.
        if url.has_password() {
            prop_assert_eq!(url.redact(&text), shown);
        }
    }

    #[test]
    fn fuzz_any_text_as_a_url_is_shown_without_panicking(text in any::<String>()) {
        let url = DatabaseUrl::new(text);
        let _ = format!("{url} {url:?} {}", url.redact("x"));
    }
}
