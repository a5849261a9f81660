//! `binarylm-torch`: the half of binarylm that links libtorch.
//!
//! The `binarylm` CLI stays free of libtorch so that planning, status and cached re-runs start
//! in milliseconds; work that needs torch runs in this executable, which `binarylm` finds
//! beside itself. Today it answers `doctor` (which libtorch, which devices); the ML stage
//! kinds run here as they land.

use std::process::ExitCode;

use stages_torch::device::{self, DeviceChoice};

const USAGE: &str = "usage: binarylm-torch doctor [--json]\n\n\
Reports the libtorch this build links, whether its CUDA backend is linked, the devices it sees\n\
and the CPU threads it would use. Normally run through `binarylm doctor`.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("doctor") => doctor(args.iter().any(|a| a == "--json")),
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn doctor(json: bool) -> ExitCode {
    let auto = match device::resolve(DeviceChoice::Auto) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A real computation, so a broken libtorch shows up here rather than in the first stage.
    let check = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(auto);
    let sum = check.dot(&check).double_value(&[]);
    let ok = (sum - 14.0).abs() < 1e-6;
    let report = serde_json::json!({
        "libtorch": option_env!("BINARYLM_LIBTORCH_LIB"),
        "cuda_backend_linked": device::cuda_backend_linked(),
        "cuda_devices": device::cuda_device_count(),
        "device": device::describe(auto),
        "threads": device::threads(),
        "compute_check": if ok { "ok" } else { "WRONG RESULT" },
    });
    if json {
        println!("{report}");
    } else {
        println!(
            "libtorch:     {}",
            option_env!("BINARYLM_LIBTORCH_LIB").unwrap_or("?")
        );
        println!(
            "cuda backend: {}",
            if device::cuda_backend_linked() {
                "linked"
            } else {
                "not linked"
            }
        );
        println!("cuda devices: {}", device::cuda_device_count());
        println!("device auto:  {}", device::describe(auto));
        println!("cpu threads:  {}", device::threads());
        println!(
            "compute:      {}",
            if ok {
                "ok (1·1+2·2+3·3 = 14)"
            } else {
                "WRONG RESULT"
            }
        );
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
