//! Choosing the libtorch device a stage runs on.
//!
//! Manifests say `device: auto | cpu | cuda | cuda:N`. `auto` takes the first GPU when the
//! linked libtorch sees one and the CPU otherwise; asking for a GPU that is not there is an
//! error, never a silent fallback to the CPU.

use std::fmt;
use std::str::FromStr;

use tch::Device;

/// The device a manifest asks for, before it is checked against the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when CUDA is available, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// A CUDA device by ordinal; plain `cuda` means `cuda:0`.
    Cuda(usize),
}

/// Why a device could not be parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{input}`: expected `auto`, `cpu`, `cuda` or `cuda:N`")]
    Parse { input: String },
    #[error(
        "device `cuda:{index}` was requested but CUDA is not available here \
         ({reason}); use `device: auto` or `device: cpu` to run on the CPU"
    )]
    CudaUnavailable { index: usize, reason: &'static str },
    #[error("device `cuda:{index}` was requested but this machine has {count} CUDA device(s)")]
    NoSuchCudaDevice { index: usize, count: usize },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse_error = || DeviceError::Parse {
            input: s.to_string(),
        };
        let lowered = s.trim().to_ascii_lowercase();
        match lowered.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => {
                let index = other.strip_prefix("cuda:").ok_or_else(parse_error)?;
                // `usize::from_str` accepts a leading `+`; only plain digits are an ordinal.
                if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(parse_error());
                }
                index.parse().map(Self::Cuda).map_err(|_| parse_error())
            }
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

/// Whether the linked libtorch carries its CUDA backend (libtorch_cuda is loaded), whether or
/// not this machine has a GPU.
pub fn cuda_backend_linked() -> bool {
    tch::utils::has_cudart()
}

/// The number of CUDA devices libtorch can use (0 without a GPU or without the CUDA backend).
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
    } else {
        0
    }
}

/// Turns a choice into a concrete device, checking that it exists on this machine.
pub fn resolve(choice: DeviceChoice) -> Result<Device, DeviceError> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceChoice::Cuda(index) => {
            if !tch::Cuda::is_available() {
                let reason = if cuda_backend_linked() {
                    "no GPU or no working driver was found"
                } else {
                    "this libtorch was built without CUDA"
                };
                return Err(DeviceError::CudaUnavailable { index, reason });
            }
            let count = cuda_device_count();
            if index >= count {
                return Err(DeviceError::NoSuchCudaDevice { index, count });
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// The device's id as a manifest names it (`cpu`, `cuda:0`): what a stage's result records as
/// the device it ran on (its thread count is recorded apart; [`describe`] is for logs).
pub fn id(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(index) => format!("cuda:{index}"),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// A short human description of a device for logs, e.g. `cpu (2 threads)` or `cuda:0`.
pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => {
            let threads = threads();
            let plural = if threads == 1 { "" } else { "s" };
            format!("cpu ({threads} thread{plural})")
        }
        Device::Cuda(index) => format!("cuda:{index}"),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

/// Sets the number of threads libtorch uses for intra-op parallelism on the CPU (at least 1).
///
/// The setting is process-wide, but a thread that has already run parallel libtorch work keeps
/// the count it started with: call this before training begins, ideally on the thread that trains.
pub fn set_threads(n: usize) {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    tch::set_num_threads(n);
}

/// The number of threads libtorch uses for intra-op parallelism on the CPU.
pub fn threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!(" CPU ".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:0".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("Cuda:12".parse(), Ok(DeviceChoice::Cuda(12)));
    }

    #[test]
    fn rejects_what_is_not_a_device() {
        for bad in [
            "", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:+1", "cuda:1.5", "cpu:0", "mps",
        ] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            assert_eq!(
                err,
                DeviceError::Parse {
                    input: bad.to_string()
                }
            );
            assert!(
                err.to_string()
                    .contains("`auto`, `cpu`, `cuda` or `cuda:N`"),
                "{err}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for choice in [
            DeviceChoice::Auto,
            DeviceChoice::Cpu,
            DeviceChoice::Cuda(0),
            DeviceChoice::Cuda(7),
        ] {
            assert_eq!(choice.to_string().parse(), Ok(choice));
        }
        assert_eq!(DeviceChoice::default(), DeviceChoice::Auto);
    }

    #[test]
    fn cpu_resolves_and_is_described() {
        assert_eq!(resolve(DeviceChoice::Cpu), Ok(Device::Cpu));
        assert!(
            describe(Device::Cpu).starts_with("cpu ("),
            "{}",
            describe(Device::Cpu)
        );
        assert_eq!(describe(Device::Cuda(1)), "cuda:1");
        assert_eq!(id(Device::Cpu), "cpu");
        assert_eq!(id(Device::Cuda(1)), "cuda:1");
    }
}
