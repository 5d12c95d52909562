//! The benchmark's migrations on the path an application takes: `N`
//! migrations, version `1.0.i` creating table `t_i` (and dropping it on the
//! way down), half of them SQL folders embedded by `embed_sql!`, half
//! `#[migration_script]` structs, all registered for `SqliteConnection`.
//! `build.rs` writes them; `benches/migrations.rs` links them with
//! `use bench_scripts as _;`.

use diesel::connection::SimpleConnection as _;

include!(concat!(env!("OUT_DIR"), "/scripts.rs"));
