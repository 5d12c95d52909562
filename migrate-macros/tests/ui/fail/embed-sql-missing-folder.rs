// A new application's first build, before `migrations/` exists.
migrate_macros::embed_sql!("no-such-migrations");

fn main() {}
