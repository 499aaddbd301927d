//! The built-in suite and the reference snapshots are embedded in the binary
//! (`src/suite.rs`): rebuild when a file is added to or removed from them, not only when one
//! that was embedded changes.
fn main() {
    println!("cargo:rerun-if-changed=scenarios");
    println!("cargo:rerun-if-changed=snapshots/reference");
    println!("cargo:rerun-if-changed=build.rs");
}
