//! A CUDA device with the kernels compiled for it, and ternary matrices uploaded to it.

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

use crate::layout::GpuTernary;
use crate::CudaError;

const TERNARY_SRC: &str = include_str!("kernels/ternary.cu");
/// Warps (rows) per GEMV block.
const GEMV_WARPS: u32 = 8;
/// Token counts with a compiled GEMV variant, largest first.
const GEMV_TOKENS: [usize; 4] = [8, 4, 2, 1];

/// Which GEMV kernel runs a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemvKernel {
    /// Activations staged in shared memory, one row per warp, 1–8 tokens per launch.
    Shared,
    /// One token, activations through L1, `R` rows per warp side by side (1, 2 or 4).
    L1Rows(usize),
}

/// The kernel [`Device::gemv`] uses for one token.
pub const DEFAULT_GEMV1: GemvKernel = GemvKernel::L1Rows(4);

/// An opened GPU: context, stream and compiled kernels.
pub struct Device {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    gemv: Vec<(usize, CudaFunction)>,
    /// One-token L1 kernels by rows per warp.
    gemv1: Vec<(usize, CudaFunction)>,
    /// Dynamic shared memory a block may use (bytes).
    smem_max: usize,
    name: String,
    arch: String,
}

/// A ternary matrix on the device.
pub struct DeviceTernary {
    pub rows: usize,
    pub cols: usize,
    pub cols_pad: usize,
    w: CudaSlice<u32>,
    /// One scale per row.
    scales: CudaSlice<f32>,
}

/// Quantized activations of `n` tokens on the device: `n × cols_pad` bytes (zero-padded),
/// a scale and `Σx` per token.
pub struct DeviceActs {
    pub n: usize,
    pub cols_pad: usize,
    x: CudaSlice<u8>,
    scales: CudaSlice<f32>,
    sums: CudaSlice<i32>,
}

fn drv(what: &str) -> impl Fn(cudarc::driver::DriverError) -> CudaError + '_ {
    move |e| CudaError::Driver(format!("{what}: {e}"))
}

impl Device {
    /// Open GPU `ordinal` and compile the kernels for it (NVRTC). Errors name what is missing:
    /// no driver library, no device, or a compile failure.
    pub fn open(ordinal: usize) -> Result<Device, CudaError> {
        // SAFETY: only tries to dlopen the driver library by its usual names (FFI probe).
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver(
                "the CUDA driver library (libcuda.so) was not found".into(),
            ));
        }
        // SAFETY: the same probe for NVRTC.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(CudaError::NoDriver(
                "NVRTC (libnvrtc.so), which compiles the kernels, was not found".into(),
            ));
        }
        let ctx = std::panic::catch_unwind(|| CudaContext::new(ordinal))
            .map_err(|_| {
                CudaError::NoDriver(
                    "the CUDA driver library (libcuda.so) could not be loaded".into(),
                )
            })?
            .map_err(|e| CudaError::NoDevice(format!("CUDA device {ordinal}: {e}")))?;
        let name = ctx.name().map_err(drv("device name"))?;
        use cudarc::driver::sys::CUdevice_attribute as A;
        let major = ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
            .map_err(drv("compute capability"))?;
        let minor = ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
            .map_err(drv("compute capability"))?;
        let arch = format!("sm_{major}{minor}");
        let opts = CompileOptions {
            options: vec![format!("--gpu-architecture={arch}"), "-std=c++17".into()],
            fmad: Some(false), // the epilogue must be the CPU's IEEE divide and multiply
            ..Default::default()
        };
        let ptx = std::panic::catch_unwind(|| compile_ptx_with_opts(TERNARY_SRC, opts))
            .map_err(|_| CudaError::NoDriver("NVRTC (libnvrtc.so) could not be loaded".into()))?
            .map_err(|e| CudaError::Compile(format!("ternary.cu for {arch}: {e}")))?;
        let module = ctx.load_module(ptx).map_err(drv("load module"))?;
        // Activations of up to 8 tokens of the widest matrix (6912 columns: 55 KB) need more
        // shared memory than the default 48 KB a block may take.
        let smem_max = ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(drv("shared memory limit"))?;
        let mut gemv = Vec::new();
        for t in GEMV_TOKENS {
            let f = module
                .load_function(&format!("ternary_gemv_t{t}"))
                .map_err(drv("load function"))?;
            f.set_attribute(
                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                smem_max,
            )
            .map_err(drv("shared memory attribute"))?;
            gemv.push((t, f));
        }
        let mut gemv1 = Vec::new();
        for r in [1usize, 2, 4] {
            let f = module
                .load_function(&format!("ternary_gemv1_r{r}"))
                .map_err(drv("load function"))?;
            gemv1.push((r, f));
        }
        // One stream for everything (a stream of its own, not the legacy default stream, so
        // that decode steps can be captured into CUDA graphs); with a single stream the
        // cross-stream event tracking is not needed.
        // SAFETY: every buffer of this device is used on `stream` only.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(drv("stream"))?;
        Ok(Device {
            ctx,
            stream,
            gemv,
            gemv1,
            smem_max: smem_max as usize,
            name,
            arch,
        })
    }

    /// The device's name (e.g. "NVIDIA H200") and the architecture the kernels were built for.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.arch)
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Upload a matrix.
    pub fn upload(&self, m: &GpuTernary) -> Result<DeviceTernary, CudaError> {
        Ok(DeviceTernary {
            rows: m.rows,
            cols: m.cols,
            cols_pad: m.cols_pad,
            scales: self
                .stream
                .memcpy_stod(&m.scales)
                .map_err(drv("upload scales"))?,
            w: self
                .stream
                .memcpy_stod(&m.words)
                .map_err(drv("upload weights"))?,
        })
    }

    /// Upload quantized activations (`xq`: n × cols) with their scales; pads each token to
    /// `cols_pad` and computes `Σx`.
    pub fn upload_acts(
        &self,
        xq: &[i8],
        x_scales: &[f32],
        cols: usize,
        cols_pad: usize,
    ) -> Result<DeviceActs, CudaError> {
        let n = x_scales.len();
        if xq.len() != n * cols || cols_pad < cols || !cols_pad.is_multiple_of(64) {
            return Err(CudaError::Shape(format!(
                "activations: {} bytes for {n} tokens of {cols} columns (padded {cols_pad})",
                xq.len()
            )));
        }
        let mut x = vec![0u8; n * cols_pad];
        let mut sums = vec![0i32; n];
        for t in 0..n {
            let src = &xq[t * cols..(t + 1) * cols];
            for (d, &v) in x[t * cols_pad..].iter_mut().zip(src) {
                *d = v as u8;
            }
            sums[t] = src.iter().map(|&v| v as i32).sum();
        }
        Ok(DeviceActs {
            n,
            cols_pad,
            x: self
                .stream
                .memcpy_stod(&x)
                .map_err(drv("upload activations"))?,
            scales: self
                .stream
                .memcpy_stod(x_scales)
                .map_err(drv("upload scales"))?,
            sums: self.stream.memcpy_stod(&sums).map_err(drv("upload sums"))?,
        })
    }

    /// `out[t·rows + r] = (Σ_c W[r,c]·x[t,c]) / x_scale[t] · scale[r]` for every token, on the
    /// stream (asynchronous). `out` holds n × rows floats.
    pub fn gemv(
        &self,
        m: &DeviceTernary,
        a: &DeviceActs,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        let k = if a.n == 1 {
            DEFAULT_GEMV1
        } else {
            GemvKernel::Shared
        };
        self.gemv_with(k, m, a, out)
    }

    /// [`gemv`](Self::gemv) on a chosen kernel (`L1Rows` takes one token only).
    pub fn gemv_with(
        &self,
        kernel: GemvKernel,
        m: &DeviceTernary,
        a: &DeviceActs,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        if a.cols_pad != m.cols_pad || out.len() < a.n * m.rows {
            return Err(CudaError::Shape(format!(
                "gemv: matrix {}×{} (padded {}), activations {} tokens padded {}, out {}",
                m.rows,
                m.cols,
                m.cols_pad,
                a.n,
                a.cols_pad,
                out.len()
            )));
        }
        let units = m.cols_pad / 16;
        let (rows, cols_pad) = (m.rows as i32, m.cols_pad as i32);
        if let GemvKernel::L1Rows(r) = kernel {
            let Some((_, f)) = self.gemv1.iter().find(|(k, _)| *k == r) else {
                return Err(CudaError::Shape(format!(
                    "no one-token kernel with {r} rows per warp"
                )));
            };
            if a.n != 1 {
                return Err(CudaError::Shape(format!(
                    "L1Rows takes one token, got {}",
                    a.n
                )));
            }
            let cfg = LaunchConfig {
                grid_dim: ((m.rows as u32).div_ceil(GEMV_WARPS * r as u32), 1, 1),
                block_dim: (32 * GEMV_WARPS, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = self.stream.launch_builder(f);
            b.arg(&m.w)
                .arg(&a.x)
                .arg(&a.scales)
                .arg(&a.sums)
                .arg(&m.scales)
                .arg(&rows)
                .arg(&cols_pad)
                .arg(out);
            // SAFETY: the kernel reads rows × cols_pad/16 words of `w` (row indices clamped
            // below `rows`) and `rows` scales, cols_pad bytes of `x`, one scale and sum, and writes `rows` floats
            // of `out` (checked above).
            unsafe { b.launch(cfg) }.map_err(drv("launch ternary_gemv1"))?;
            return Ok(());
        }
        if m.cols_pad > self.smem_max {
            return Err(CudaError::Shape(format!(
                "gemv: {} columns of activations exceed the {} bytes of shared memory a block has",
                m.cols_pad, self.smem_max
            )));
        }
        let mut t0 = 0;
        while t0 < a.n {
            let (t, f) = self
                .gemv
                .iter()
                .find(|(t, _)| *t <= a.n - t0 && *t * m.cols_pad <= self.smem_max)
                .expect("a 1-token variant fits");
            let cfg = LaunchConfig {
                grid_dim: ((m.rows as u32).div_ceil(GEMV_WARPS), 1, 1),
                block_dim: (32 * GEMV_WARPS, 1, 1),
                shared_mem_bytes: (t * m.cols_pad) as u32,
            };
            let x = a.x.slice(t0 * units * 16..(t0 + t) * units * 16);
            let xs = a.scales.slice(t0..t0 + t);
            let sums = a.sums.slice(t0..t0 + t);
            let mut o = out.slice_mut(t0 * m.rows..(t0 + t) * m.rows);
            let mut b = self.stream.launch_builder(f);
            b.arg(&m.w)
                .arg(&x)
                .arg(&xs)
                .arg(&sums)
                .arg(&m.scales)
                .arg(&rows)
                .arg(&cols_pad)
                .arg(&mut o);
            // SAFETY: the kernel reads rows × cols_pad/16 words of `w` and `rows` scales, t × cols_pad bytes of
            // `x`, t scales and sums, and writes t × rows floats of `o` — all of these sizes
            // were checked above; shared memory is t × cols_pad bytes as the kernel expects.
            unsafe { b.launch(cfg) }.map_err(drv("launch ternary_gemv"))?;
            t0 += t;
        }
        Ok(())
    }

    /// Copy a device buffer back (synchronizes the stream).
    pub fn download(&self, v: &CudaSlice<f32>) -> Result<Vec<f32>, CudaError> {
        self.stream.memcpy_dtov(v).map_err(drv("download"))
    }

    /// A zeroed device buffer.
    pub fn zeros(&self, n: usize) -> Result<CudaSlice<f32>, CudaError> {
        self.stream.alloc_zeros::<f32>(n).map_err(drv("alloc"))
    }
}
