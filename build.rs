//! New SQL migration folders do not rebuild a crate by themselves (`embed_sql!`
//! reads the directory at compile time, and rustc only tracks the files it
//! includes). This is the documented fix, applied to the examples' folders.
fn main() {
    println!("cargo:rerun-if-changed=examples/users/migrations");
    println!("cargo:rerun-if-changed=examples/cart/migrations");
    println!("cargo:rerun-if-changed=tests/fixtures");
}
