//! Records the version of the compiler that builds this crate, sent to Unleash as
//! `platformVersion` (the server shows it next to `platformName: "rust"`).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    // `rustc 1.95.0 (59807616e 2026-04-14)` -> `1.95.0`; unknown when rustc cannot be run.
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=UNLEASH_CLIENT_RUSTC_VERSION={version}");
}
