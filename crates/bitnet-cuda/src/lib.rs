//! CUDA backend for BitNet-Rust (first part: the ternary GEMV of decode).
//!
//! Built on `cudarc` with dynamic loading and NVRTC: the crate builds, and its host-side tests
//! run, on a machine with no GPU, no driver and no nvcc; kernels are compiled for the device
//! when it is opened ([`Device::open`]), and a missing driver is an error that says so.
//!
//! - [`layout`]: the GPU-native 2-bit layout (coalesced 128-bit loads, one `dp4a` operand per
//!   shift-and-mask), packed and checked on the host, with a host model of the kernel's
//!   arithmetic.
//! - [`device`]: context, stream, compiled kernels, uploads, the GEMV launch.
//!
//! `examples/gemv_check.rs` runs on the GPU machine: it checks every 2B4T-shaped GEMV bit for
//! bit against the CPU kernels and times it against the measured copy bandwidth
//! (`scripts/cuda/run_on_device.sh`).

pub mod device;
pub mod layout;

pub use device::{Device, DeviceActs, DeviceTernary, GemvKernel, DEFAULT_GEMV1};
pub use layout::GpuTernary;

/// Errors of the CUDA backend.
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// No CUDA driver (or NVRTC) library on this machine.
    #[error("no CUDA driver: {0}; use the CPU backend (--device cpu)")]
    NoDriver(String),
    /// The driver is there but the device is not usable.
    #[error("{0}")]
    NoDevice(String),
    /// NVRTC rejected a kernel.
    #[error("kernel compilation failed: {0}")]
    Compile(String),
    /// A driver call failed.
    #[error("CUDA: {0}")]
    Driver(String),
    /// Sizes that do not fit together.
    #[error("shape: {0}")]
    Shape(String),
}
