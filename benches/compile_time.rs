//! What `#[migration_script]` costs at build time: generated crates with N
//! code scripts, each built with and without the attribute (the same
//! structs and impls otherwise), timed with one `cargo build` per sample.
//!
//! `cargo bench --bench compile_time` builds N = 100, 500 and 1000 in two
//! layouts, alternating variants each round, and prints medians and ratios.
//! Besides the plain structs (whose impls nothing uses, so no code is
//! generated for them) it builds the same structs with `main` calling each
//! `up` once: the least any crate whose scripts can run pays; and with a
//! bare linkme element per script (a function that calls its `up`, in a
//! slice of the crate's own): the least any registration through linkme
//! pays, which the attribute builds on. The layouts:
//! - **flat**: every struct at the crate root;
//! - **glob**: each struct in a module of its own that starts with
//!   `use super::*;`, which also imports every name the attribute puts at
//!   the crate root (the duplicate-version check).
//!
//! Under `cargo test` (no `--bench` argument) it builds N = 10 in both
//! layouts once and checks that each binary registered what it should;
//! nothing about time is asserted.
//!
//! The crates depend on `migrate-core` and `migrate-macros` by path (and
//! on `linkme`, for the bare elements) and are
//! built in `target/compile-time-bench`, with the workspace's lock file, in
//! the dev profile without incremental compilation. The dependencies are
//! built once, before any sample.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    Flat,
    Glob,
}

/// How the crate's scripts reach a registry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// No registry at all: the structs and impls alone. Nothing uses the
    /// impls, so the compiler generates no code for them.
    Plain,
    /// No registry: `main` calls each script's `up` once. The least a
    /// crate whose scripts can run pays: their code is generated.
    Called,
    /// Listed by hand with `Script::new` (no attribute).
    Listed,
    /// No registry: a bare linkme element per script, a function that calls
    /// its `up`, in a slice of function pointers of the crate's own. The
    /// least any registration through linkme pays (linkme's attribute and
    /// its type check of each element included), which the attribute builds
    /// on. (A `static` holding a closure instead cost 15% more.)
    Linkme,
    /// `#[migration_script]` on each struct.
    Annotated,
}

/// The source of a crate with `n` scripts.
fn source(n: usize, layout: Layout, variant: Variant) -> String {
    let annotated = variant == Variant::Annotated;
    let mut s = String::from(
        "use migrate_core::{BoxError, MigrationScript};\n\
         #[allow(unused_imports)]\n\
         use migrate_macros::migration_script;\n\n\
         pub struct Conn(pub Vec<usize>);\n\n",
    );
    if variant == Variant::Linkme {
        s.push_str(
            "#[linkme::distributed_slice]\n\
             pub static STEPS: [fn(&mut Conn) -> Result<(), BoxError>];\n\n",
        );
    }
    for i in 1..=n {
        let attribute = if annotated {
            format!("#[migration_script(version = \"1.0.{i}\", description = \"step {i}\")]\n")
        } else {
            String::new()
        };
        let element = if variant == Variant::Linkme {
            format!(
                "#[linkme::distributed_slice(STEPS)]\n\
                 fn step_{i}(conn: &mut Conn) -> Result<(), BoxError> {{ Step{i}.up(conn) }}\n"
            )
        } else {
            String::new()
        };
        let item = format!(
            "{attribute}pub struct Step{i};\n\n\
             impl MigrationScript for Step{i} {{\n    \
                 type Connection = Conn;\n    \
                 fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {{\n        \
                     conn.0.push({i});\n        \
                     Ok(())\n    \
                 }}\n\
             }}\n{element}"
        );
        match layout {
            Layout::Flat => s.push_str(&item),
            Layout::Glob => {
                let _ = write!(s, "mod step_{i} {{\nuse super::*;\n{item}}}\n");
            }
        }
        s.push('\n');
    }
    let path = |i: usize| match layout {
        Layout::Flat => format!("Step{i}"),
        Layout::Glob => format!("step_{i}::Step{i}"),
    };
    if variant == Variant::Called {
        s.push_str("fn main() {\n    let mut conn = Conn(Vec::new());\n");
        for i in 1..=n {
            let _ = writeln!(s, "    {}.up(&mut conn).unwrap();", path(i));
        }
        s.push_str("    println!(\"{}\", conn.0.len());\n}\n");
    } else if variant == Variant::Listed {
        s.push_str("fn listed() -> Vec<migrate_core::Script> {\n    vec![\n");
        for i in 1..=n {
            let _ = writeln!(
                s,
                "        migrate_core::Script::new(\"1.0.{i}\", &{}),",
                path(i)
            );
        }
        s.push_str("    ]\n}\n\nfn main() {\n    println!(\"{}\", migrate_core::Registry::new(listed()).unwrap().len());\n}\n");
    } else if variant == Variant::Linkme {
        s.push_str(
            "fn main() {\n    \
                 let mut conn = Conn(Vec::new());\n    \
                 for up in STEPS {\n        \
                     up(&mut conn).unwrap();\n    \
                 }\n    \
                 println!(\"{}\", conn.0.len());\n\
             }\n",
        );
    } else {
        s.push_str(
            "fn main() {\n    \
                 println!(\"{}\", migrate_core::registered().unwrap().len());\n\
             }\n",
        );
    }
    s
}

/// The workspace root (this package's manifest directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes the crate for one variant and returns its directory.
fn write_crate(base: &Path, n: usize, layout: Layout, variant: Variant) -> PathBuf {
    let name = format!("bench_{layout:?}_{n}_{variant:?}").to_lowercase();
    let dir = base.join("crates").join(&name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let root = root();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nmigrate-core = {{ path = {:?} }}\nmigrate-macros = {{ path = {:?} }}\nlinkme = \"0.3.37\"\n\n\
         # Not a member of the migrate workspace above it.\n[workspace]\n",
        root.join("migrate-core"),
        root.join("migrate-macros"),
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/main.rs"), source(n, layout, variant)).unwrap();
    dir
}

fn cargo(dir: &Path, target: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args)
        .arg("--quiet")
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_INCREMENTAL", "0")
        // The outer `cargo bench` may have set these for this package.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd
}

/// Builds the crate in `dir` from scratch (its own code only) and returns
/// the time taken; then checks that its binary registered `registered`.
fn build(dir: &Path, target: &Path, registered: usize) -> Duration {
    // Forget the last build of this crate, not of its dependencies.
    let package = dir.file_name().unwrap().to_str().unwrap();
    let clean = cargo(dir, target, &["clean", "-p", package])
        .status()
        .unwrap();
    assert!(clean.success(), "cargo clean -p {package} failed");
    let started = Instant::now();
    let out = cargo(dir, target, &["build"]).output().unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "building {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = cargo(dir, target, &["run"]).output().unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        printed.trim(),
        registered.to_string(),
        "{} registered the wrong number of scripts: {}",
        dir.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    took
}

/// The rebuild a user feels: the crate in `dir` with `n` scripts built as
/// `cargo build` builds by default (incrementally), then one script added
/// and built again, which is timed; then put back. `registered` is what
/// the binary prints after the addition.
fn rebuild(dir: &Path, target: &Path, n: usize, variant: Variant, registered: usize) -> Duration {
    let main = dir.join("src/main.rs");
    let incremental = |args: &[&str]| {
        let mut cmd = cargo(dir, target, args);
        cmd.env("CARGO_INCREMENTAL", "1");
        cmd.output().unwrap()
    };
    std::fs::write(&main, source(n, Layout::Flat, variant)).unwrap();
    assert!(incremental(&["build"]).status.success());
    std::fs::write(&main, source(n + 1, Layout::Flat, variant)).unwrap();
    let started = Instant::now();
    let out = incremental(&["build"]);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "rebuilding {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = incremental(&["run"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        registered.to_string()
    );
    std::fs::write(&main, source(n, Layout::Flat, variant)).unwrap();
    took
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (sizes, rounds): (&[usize], usize) = if full {
        let rounds = std::env::var("MIGRATE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
        (&[100, 500, 1000], rounds)
    } else {
        (&[10], 1)
    };
    let base = root().join("target/compile-time-bench");
    let target = base.join("target");
    // The dependencies, once, outside any sample.
    let warm = write_crate(&base, 1, Layout::Flat, Variant::Annotated);
    let status = cargo(&warm, &target, &["build"]).status().unwrap();
    assert!(status.success(), "building the dependencies failed");

    println!(
        "\nBuild time of a crate with N code scripts (cargo build, dev profile, {rounds} rounds, medians in s):"
    );
    println!(
        "| N | layout | plain structs | called directly | linkme alone | listed by hand | with #[migration_script] | attribute / plain | linkme alone / plain | attribute / called | attribute / linkme alone | attribute / listed | extra per script over linkme alone (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    const VARIANTS: [Variant; 5] = [
        Variant::Plain,
        Variant::Called,
        Variant::Linkme,
        Variant::Listed,
        Variant::Annotated,
    ];
    for layout in [Layout::Flat, Layout::Glob] {
        for &n in sizes {
            let dirs = VARIANTS.map(|v| write_crate(&base, n, layout, v));
            let mut samples: [Vec<Duration>; 5] = Default::default();
            for r in 0..rounds {
                // Rotate which variant goes first.
                for k in 0..VARIANTS.len() {
                    let i = (k + r) % VARIANTS.len();
                    // What the binary prints: scripts registered, or run.
                    let registered = match VARIANTS[i] {
                        Variant::Plain => 0,
                        Variant::Called
                        | Variant::Linkme
                        | Variant::Listed
                        | Variant::Annotated => n,
                    };
                    samples[i].push(build(&dirs[i], &target, registered));
                }
            }
            let [p, c, k, l, a] = samples.map(|mut s| median(&mut s).as_secs_f64());
            println!(
                "| {n} | {} | {p:.2} | {c:.2} | {k:.2} | {l:.2} | {a:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                format!("{layout:?}").to_lowercase(),
                a / p,
                k / p,
                a / c,
                a / k,
                a / l,
                (a - k) * 1000.0 / n as f64
            );
        }
    }
    rebuild_table(&base, if full { 300 } else { 10 }, rounds);
}

/// The rebuild after adding one script to a crate of `n`, for plain
/// structs, bare linkme elements and the attribute.
fn rebuild_table(base: &Path, n: usize, rounds: usize) {
    const VARIANTS: [Variant; 3] = [Variant::Plain, Variant::Linkme, Variant::Annotated];
    let target = base.join("target-incremental");
    let dirs = VARIANTS.map(|v| write_crate(base, n, Layout::Flat, v));
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for r in 0..rounds {
        for k in 0..VARIANTS.len() {
            let i = (k + r) % VARIANTS.len();
            let registered = if VARIANTS[i] == Variant::Plain {
                0
            } else {
                n + 1
            };
            samples[i].push(rebuild(&dirs[i], &target, n, VARIANTS[i], registered));
        }
    }
    let [p, k, a] = samples.map(|mut s| median(&mut s).as_secs_f64());
    println!(
        "\nRebuild after adding one script to a crate of {n} (cargo build, dev profile, incremental, {rounds} rounds, medians in s):"
    );
    println!(
        "| plain structs | linkme alone | with #[migration_script] | attribute / linkme alone | attribute / plain |"
    );
    println!("|---|---|---|---|---|");
    println!("| {p:.2} | {k:.2} | {a:.2} | {:.2} | {:.2} |", a / k, a / p);
}
