//! Compile-fail cases of `#[migrate::test]`: each error points at the
//! user's own token and says what to write instead.
//!
//! Regenerate a snapshot with `TRYBUILD=overwrite cargo test --test
//! test_attribute_ui` and read the diff.

#[test]
fn misuse_of_the_test_attribute_fails_to_compile_on_the_users_token() {
    trybuild::TestCases::new().compile_fail("tests/ui/test-attribute/*.rs");
}
