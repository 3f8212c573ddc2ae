//! `cargo xtask`: the project's own build tasks.
fn main() {}
