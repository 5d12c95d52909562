//! The linkme caveat, shown: `library-scripts` is a dependency of this test
//! binary, but nothing here names it, so the linker drops it and its scripts
//! are not registered. `tests/registry.rs` keeps it with
//! `use library_scripts as _;` and sees them. If this test ever fails, the
//! linker has changed and the caveat in docs/writing-migrations.md can be relaxed.

#[test]
fn scripts_of_a_library_the_binary_never_names_are_not_registered() {
    let registry = migrate::registry::registered().unwrap();
    assert_eq!(registry.len(), 0, "{registry:?}");
}
