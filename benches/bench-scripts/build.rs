//! Writes the benchmark's N migrations into `OUT_DIR`, as an application
//! would keep them: migration `i` (version `1.0.i`) creates table `t_i` and
//! drops it on the way down; even ones are SQL folders that `embed_sql!`
//! embeds, odd ones `#[migration_script]` structs.

use std::fmt::Write as _;
use std::path::Path;

/// How many migrations (the generated code exports it as `N`).
const N: usize = 1000;

fn up_sql(i: usize) -> String {
    format!("CREATE TABLE t_{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
}

fn down_sql(i: usize) -> String {
    format!("DROP TABLE t_{i};")
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    let sql = out.join("migrations");
    // Start clean, so that a smaller N leaves no folder behind.
    let _ = std::fs::remove_dir_all(&sql);
    let mut code =
        format!("/// How many migrations this crate registers.\npub const N: usize = {N};\n\n");
    writeln!(
        code,
        "migrate::embed_sql!({:?});\n",
        sql.to_str().expect("a UTF-8 OUT_DIR")
    )
    .unwrap();
    for i in 1..=N {
        if i % 2 == 0 {
            let folder = sql.join(format!("1.0.{i}_create_t_{i}"));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("up.sql"), up_sql(i)).unwrap();
            std::fs::write(folder.join("down.sql"), down_sql(i)).unwrap();
        } else {
            write!(
                code,
                r#"/// Creates `t_{i}`.
#[migrate::migration_script(version = "1.0.{i}", name = "create_t_{i}")]
pub struct CreateT{i};

impl migrate::MigrationScript for CreateT{i} {{
    type Connection = diesel::SqliteConnection;
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut diesel::SqliteConnection) -> Result<(), migrate::BoxError> {{
        conn.batch_execute({up:?})?;
        Ok(())
    }}

    fn down(&self, conn: &mut diesel::SqliteConnection) -> Result<(), migrate::BoxError> {{
        conn.batch_execute({down:?})?;
        Ok(())
    }}
}}

"#,
                up = up_sql(i),
                down = down_sql(i),
            )
            .unwrap();
        }
    }
    std::fs::write(out.join("scripts.rs"), code).unwrap();
}
