//! `embed_sql!` as a user's build sees it: a small crate (no diesel) is
//! written to a temporary directory and built with cargo.
//!
//! - With the documented `build.rs` (`cargo:rerun-if-changed=migrations`),
//!   adding a folder rebuilds the crate and the new migration is embedded.
//! - Bad folders are compile errors with clear messages.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Fixture {
    dir: tempfile::TempDir,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// The fixtures share a target directory (dependencies build once); one
/// cargo at a time keeps each from running the other's binary.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Fixture {
    fn new(name: &str, main_rs: &str) -> Fixture {
        let serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[workspace]

[dependencies]
migrate-core = {{ path = "{core}" }}
migrate-macros = {{ path = "{macros}" }}
"#,
            name = name,
            core = root.join("migrate-core").display(),
            macros = root.join("migrate-macros").display(),
        );
        std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
        // The workspace's lock file: the same dependency versions, no network.
        std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
        std::fs::write(
            dir.path().join("build.rs"),
            "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), main_rs).unwrap();
        Fixture {
            dir,
            _serial: serial,
        }
    }

    fn folder(&self, name: &str, up: &[u8]) {
        let path = self.dir.path().join("migrations").join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("up.sql"), up).unwrap();
    }

    fn file(&self, folder: &str, file: &str, text: &[u8]) {
        std::fs::write(
            self.dir.path().join("migrations").join(folder).join(file),
            text,
        )
        .unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_dir_all(self.dir.path().join("migrations").join(name)).unwrap();
    }

    /// `cargo run`: Ok(stdout) or Err(stderr).
    fn run(&self) -> Result<String, String> {
        let target: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/embed-fixture");
        let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["run", "--quiet", "--offline"])
            .current_dir(self.dir.path())
            .env("CARGO_TARGET_DIR", target)
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

const MAIN: &str = r#"
migrate_macros::embed_sql!();

fn main() {
    let registry = migrate_core::registered().unwrap();
    let names: Vec<String> = registry.iter().map(|e| format!("{}_{}", e.version, e.script.name())).collect();
    println!("{}", names.join(","));
}
"#;

#[test]
fn a_new_folder_is_embedded_on_the_next_build_and_bad_folders_are_compile_errors() {
    let f = Fixture::new("embed-fixture-folders", MAIN);
    f.folder("1.0.0_create", b"CREATE TABLE a (id INT);");
    assert_eq!(f.run().unwrap(), "1.0.0_create");

    // The documented build.rs makes a new folder rebuild the crate.
    f.folder("1.0.10_later", b"CREATE TABLE c (id INT);");
    f.folder("1.0.2_second", b"CREATE TABLE b (id INT);");
    // diesel_migrations' folders may stay beside ours: they are not embedded.
    f.folder(
        "2023-05-01-120000_diesel_legacy",
        b"CREATE TABLE d (id INT);",
    );
    assert_eq!(f.run().unwrap(), "1.0.0_create,1.0.2_second,1.0.10_later");

    // Every bad folder is reported, in one build.
    f.folder("1.0_short", b"SELECT 1;");
    f.folder("1.1.0_empty", b"  \n");
    f.folder("1.2.0_latin1", b"SELECT 'caf\xe9';");
    f.folder("1.0.2+b_same", b"SELECT 1;");
    // What `create` writes, not yet edited.
    f.folder(
        "1.3.0_unwritten",
        b"-- Migration 1.3.0: the change.\n\n-- more\n",
    );
    // SQL that ends the transaction it runs in.
    f.folder(
        "1.4.0_commits",
        b"CREATE TABLE e (id INT);\nCOMMIT;\nCREATE TABLE f (id INT);",
    );
    f.folder("1.5.0_wrapped", b"CREATE TABLE g (id INT);");
    f.file(
        "1.5.0_wrapped",
        "down.sql",
        b"BEGIN;\nDROP TABLE g;\nCOMMIT;\n",
    );
    // The mysql client's command, which no server runs.
    f.folder(
        "1.5.1_delimiter",
        b"DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\nDELIMITER ;\n",
    );
    let err = f.run().unwrap_err();
    for expected in [
        "`migrations/1.5.1_delimiter/up.sql`, line 1: `DELIMITER` is a command of the mysql client that no server runs",
        "SQL migration folder `migrations/1.0_short`: invalid version `1.0`",
        "`migrations/1.1.0_empty/up.sql` is empty",
        "`migrations/1.2.0_latin1/up.sql` is not valid UTF-8",
        "SQL migrations `migrations/1.0.2+b_same` and `migrations/1.0.2_second` have the same version",
        "`migrations/1.3.0_unwritten/up.sql` has only comments; write the migration, or remove the folder",
        "`migrations/1.4.0_commits/up.sql`, line 2: `COMMIT` would end the transaction the migration runs in, so part of it could be kept without its history row; remove it (each migration runs in a transaction of its own), or set `run_in_transaction = false` in `migrations/1.4.0_commits/metadata.toml` to manage transactions yourself",
        "`migrations/1.5.0_wrapped/down.sql`, line 1: `BEGIN` would end the transaction",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    for name in [
        "1.0_short",
        "1.1.0_empty",
        "1.2.0_latin1",
        "1.0.2+b_same",
        "1.3.0_unwritten",
        "1.5.0_wrapped",
        "1.5.1_delimiter",
    ] {
        f.remove(name);
    }
    // What only some dialects read as ending the transaction (MySQL reads
    // a backslash-escaped quote, the others a `COMMIT`; MySQL's `#` comment)
    // builds: the executor refuses it on a connection that reads it so.
    f.folder(
        "1.5.2_escaped",
        b"# Begin: one row\nINSERT INTO a VALUES ('it\\'s; commit later');\n",
    );
    // Outside a transaction, the migration manages its own.
    f.file(
        "1.4.0_commits",
        "metadata.toml",
        b"run_in_transaction = false\n",
    );
    // An editor's byte-order mark is not part of the SQL.
    f.folder("1.6.0_bom", b"\xef\xbb\xbfCREATE TABLE h (id INT);");
    assert_eq!(
        f.run().unwrap(),
        "1.0.0_create,1.0.2_second,1.0.10_later,1.4.0_commits,1.5.2_escaped,1.6.0_bom"
    );
}

#[test]
fn a_sql_folder_and_a_code_script_with_one_version_is_a_compile_error() {
    let main = format!(
        "{MAIN}\npub struct Conn;\n#[migrate_macros::migration_script(version = \"1.0.0\")]\npub struct Clash;\nimpl migrate_core::MigrationScript for Clash {{\n    type Connection = Conn;\n    fn up(&self, _: &mut Conn) -> Result<(), migrate_core::BoxError> {{ Ok(()) }}\n}}\n"
    );
    let f = Fixture::new("embed-fixture-clash", &main);
    f.folder("1.0.0_create", b"CREATE TABLE a (id INT);");
    let err = f.run().unwrap_err();
    assert!(
        err.contains(
            "error[E0428]: the name `migration_version_1_0_0_is_used_by_two_scripts_ignoring_build_metadata` is defined multiple times"
        ),
        "{err}"
    );
}
