//! Compile-fail and compile-pass cases of `#[migration_script]`.
//!
//! Regenerate a snapshot with `TRYBUILD=overwrite cargo test -p migrate-macros`
//! and read the diff: every error must point at the user's own token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
