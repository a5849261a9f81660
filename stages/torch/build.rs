//! Bakes the location of libtorch into this package's binaries and tests, so that they run
//! without LD_LIBRARY_PATH.
//!
//! torch-sys (`links = "tch"`) reports the libtorch library directory it linked against as
//! `cargo:libtorch_lib=...`, which cargo hands to the build scripts of its direct dependents as
//! `DEP_TCH_LIBTORCH_LIB`. Link arguments only apply to the package that prints them, so any
//! other package whose binaries or tests link tch needs a direct torch-sys dependency and a copy
//! of this script.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lib = env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("DEP_TCH_LIBTORCH_LIB is unset: this package must depend on torch-sys directly");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // rustc links with --as-needed, which drops libtorch_cuda: nothing references its symbols,
    // it only registers the CUDA backend when loaded. Without it a CUDA-enabled libtorch reports
    // CUDA as unavailable even on a GPU machine, so keep it as a forced dependency.
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-env=BINARYLM_LIBTORCH_HAS_CUDA=1");
    }
    println!("cargo:rustc-env=BINARYLM_LIBTORCH_LIB={lib}");
    // The PyPI wheel's version (`2.11.0+cpu`), which runs record: results are bit-identical
    // only within one libtorch build. A libtorch without version.py leaves it unset.
    let version_py = Path::new(&lib).join("..").join("version.py");
    println!("cargo:rerun-if-changed={}", version_py.display());
    if let Some(v) = std::fs::read_to_string(&version_py)
        .ok()
        .and_then(|text| wheel_version(&text))
    {
        println!("cargo:rustc-env=BINARYLM_LIBTORCH_VERSION={v}");
    }
}

/// The value of `__version__ = '…'` in torch's version.py.
fn wheel_version(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("__version__")?.trim_start();
        let quoted = rest.strip_prefix('=')?.trim();
        let inner = quoted.trim_matches(|c| c == '\'' || c == '"');
        (!inner.is_empty() && inner.len() < quoted.len()).then(|| inner.to_string())
    })
}
