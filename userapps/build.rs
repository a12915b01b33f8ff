//! Links every program with `user.ld` (binaries only: the runtime library is linked into
//! them, not by itself).
fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("user.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
