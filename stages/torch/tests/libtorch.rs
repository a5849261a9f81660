//! Proves that libtorch is linked, loads without LD_LIBRARY_PATH and computes correctly on the
//! CPU. Every test here fails if the libtorch wiring (setup.sh, build.rs, rpath) is broken.

use stages_torch::device::{self, DeviceChoice, DeviceError};
use tch::{Device, Kind, Tensor};

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.reshape([-1])).expect("tensor to Vec<f32>")
}

fn assert_close(actual: &[f32], expected: &[f32]) {
    assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (a - e).abs() <= 1e-5 * e.abs().max(1.0),
            "{actual:?} vs {expected:?}"
        );
    }
}

#[test]
fn matmul_matches_hand_computed_values() {
    let a = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.]).reshape([2, 3]);
    let b = Tensor::from_slice(&[7f32, 8., 9., 10., 11., 12.]).reshape([3, 2]);
    let c = a.matmul(&b);
    assert_eq!(c.size(), [2, 2]);
    assert_eq!(c.device(), Device::Cpu);
    // [1 2 3] . [7 9 11] = 58, [1 2 3] . [8 10 12] = 64, [4 5 6] . [7 9 11] = 139, ... = 154
    assert_close(&values(&c), &[58., 64., 139., 154.]);
}

#[test]
fn backward_gives_the_analytic_gradient() {
    let xs = [1f32, -2., 3., 0.5];
    let x = Tensor::from_slice(&xs).set_requires_grad(true);
    let y = (&x * &x).sum(Kind::Float);
    assert_close(&values(&y), &[1. + 4. + 9. + 0.25]);
    y.backward();
    // d/dx sum(x^2) = 2x
    let expected: Vec<f32> = xs.iter().map(|v| 2. * v).collect();
    assert_close(&values(&x.grad()), &expected);
}

#[test]
fn seeded_sampling_is_reproducible() {
    tch::manual_seed(1337);
    let first = values(&Tensor::randn([16], (Kind::Float, Device::Cpu)));
    tch::manual_seed(1337);
    let second = values(&Tensor::randn([16], (Kind::Float, Device::Cpu)));
    assert_eq!(first, second);
    assert!(
        first.iter().any(|v| *v != first[0]),
        "randn gave a constant: {first:?}"
    );
}

#[test]
fn auto_resolves_to_what_the_machine_has() {
    let gpu_driver_present = std::path::Path::new("/dev/nvidiactl").exists();
    if !gpu_driver_present {
        // No NVIDIA driver: CUDA cannot be available, auto must fall back to the CPU and an
        // explicit CUDA request must be a clear error.
        assert!(!tch::Cuda::is_available());
        assert_eq!(device::resolve(DeviceChoice::Auto), Ok(Device::Cpu));
        let err = device::resolve(DeviceChoice::Cuda(0)).unwrap_err();
        assert!(
            matches!(err, DeviceError::CudaUnavailable { index: 0, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("`cuda:0`"), "{err}");
        assert!(err.to_string().contains("device: cpu"), "{err}");
    } else if tch::Cuda::is_available() {
        assert_eq!(device::resolve(DeviceChoice::Auto), Ok(Device::Cuda(0)));
        let count = device::cuda_device_count();
        assert!(count >= 1);
        assert_eq!(
            device::resolve(DeviceChoice::Cuda(count)),
            Err(DeviceError::NoSuchCudaDevice {
                index: count,
                count
            })
        );
    }
    assert_eq!(device::resolve(DeviceChoice::Cpu), Ok(Device::Cpu));
}

#[test]
fn cuda_backend_is_linked_when_libtorch_has_it() {
    // build.rs sets this when the linked libtorch ships libtorch_cuda.so; the binary must then
    // load it despite --as-needed, or CUDA would never be available even on a GPU machine.
    if option_env!("BINARYLM_LIBTORCH_HAS_CUDA").is_some() {
        assert!(
            device::cuda_backend_linked(),
            "libtorch_cuda.so was not loaded"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn libtorch_is_loaded_from_the_linked_directory() {
    let lib_dir = std::fs::canonicalize(env!("BINARYLM_LIBTORCH_LIB")).expect("libtorch lib dir");
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let expected = lib_dir.join("libtorch_cpu.so");
    assert!(
        maps.lines()
            .any(|l| l.ends_with(&*expected.to_string_lossy())),
        "{} is not mapped into this process",
        expected.display()
    );
}

#[test]
fn thread_count_can_be_set() {
    let before = device::threads();
    device::set_threads(1);
    assert_eq!(device::threads(), 1);
    assert_eq!(device::describe(Device::Cpu), "cpu (1 thread)");
    device::set_threads(2);
    assert_eq!(device::threads(), 2);
    assert_eq!(device::describe(Device::Cpu), "cpu (2 threads)");
    device::set_threads(before);
}
