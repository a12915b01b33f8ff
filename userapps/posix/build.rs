//! Links the programs with the same script as every user program
//! (`userapps/user.ld`: loaded at 0x400000, page-aligned segments).
fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../user.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
