//! Instruction-set selection: detected once from CPUID, overridable with `BITNET_ISA`.

use std::sync::OnceLock;

/// A kernel code path. Ordered from least to most capable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust; runs everywhere and is the reference.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (`vpmaddubsw` ternary kernels).
    Avx2,
    /// x86-64 AVX-512 F/BW/VL + VNNI (`vpdpbusd` ternary kernels).
    Avx512,
    /// AVX-512 plus AMX-INT8 tiles (`tdpbssd`): batched ternary GEMM; one-token and dense
    /// kernels are the AVX-512 ones.
    Amx,
}

impl Isa {
    /// Every path this crate knows, least capable first.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Amx];

    /// Lower-case name as accepted by `BITNET_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Amx => "amx",
        }
    }

    /// Parse a `BITNET_ISA` value.
    pub fn parse(s: &str) -> Option<Isa> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512" | "avx512vnni" | "avx-512" => Some(Isa::Avx512),
            "amx" | "amx-int8" => Some(Isa::Amx),
            _ => None,
        }
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Isa::Avx512 => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => Isa::Avx512.is_available() && amx_usable(),
            #[cfg(target_arch = "x86")]
            Isa::Amx => false,
            #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
            _ => false,
        }
    }

    /// The most capable path not above `self` that this CPU can run.
    ///
    /// Every `*_with(isa, ..)` entry point goes through this, so asking for a path the CPU lacks
    /// runs a slower one instead of executing unsupported instructions.
    pub fn clamp_available(self) -> Isa {
        // Availability is monotonic (AVX-512 here implies AVX2, which implies scalar), so the
        // answer is `min(self, best)`; the best path is probed once, not on every kernel call.
        static BEST: OnceLock<Isa> = OnceLock::new();
        let best = *BEST.get_or_init(|| {
            let mut isa = Isa::Amx;
            while !isa.is_available() {
                isa = match isa {
                    Isa::Amx => Isa::Avx512,
                    Isa::Avx512 => Isa::Avx2,
                    _ => Isa::Scalar,
                };
            }
            isa
        });
        self.min(best)
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The paths this CPU can run, least capable first (always starts with `Scalar`).
pub fn available_isas() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
}

/// The best path this CPU supports.
pub fn detected_isa() -> Isa {
    Isa::Amx.clamp_available()
}

static ACTIVE: OnceLock<Isa> = OnceLock::new();

/// The path used by the plain (`matvec`, `matmul`, ...) entry points, chosen on first use:
/// `BITNET_ISA=scalar|avx2|avx512|amx` if set (an unknown or unavailable value falls back with a
/// warning on stderr), otherwise [`detected_isa`].
pub fn active_isa() -> Isa {
    *ACTIVE.get_or_init(|| {
        let env = std::env::var("BITNET_ISA").ok();
        let (isa, warning) = resolve(env.as_deref(), detected_isa());
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        isa
    })
}

/// Choose the path from a `BITNET_ISA` value and the best path the CPU runs (`best`): returns
/// the path and, if the request could not be honoured, a warning to print. Never fails.
pub fn resolve(env: Option<&str>, best: Isa) -> (Isa, Option<String>) {
    let v = match env.map(str::trim) {
        None | Some("") | Some("auto") => return (best, None),
        Some(v) => v,
    };
    match Isa::parse(v) {
        Some(want) if want <= best => (want, None),
        Some(want) => (
            best,
            Some(format!(
                "BITNET_ISA={v}: this CPU cannot run {want}; using {best}"
            )),
        ),
        None => (
            best,
            Some(format!(
                "BITNET_ISA={v} is not one of scalar, avx2, avx512, amx, auto; using {best}"
            )),
        ),
    }
}

/// AMX-TILE and AMX-INT8 in CPUID, and the OS lets this process use the tile data state
/// (Linux ≥ 5.16: `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, granted process-wide).
/// Probed once.
#[cfg(target_arch = "x86_64")]
fn amx_usable() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        use std::arch::x86_64::__cpuid_count;
        #[allow(unused_unsafe)]
        // SAFETY: CPUID is available on every x86-64 CPU; leaf 7 is checked against leaf 0's
        // maximum first.
        let (max, edx) = unsafe {
            let max = __cpuid_count(0, 0).eax;
            (max, if max >= 7 { __cpuid_count(7, 0).edx } else { 0 })
        };
        let cpu = max >= 7 && (edx >> 24) & 1 == 1 && (edx >> 25) & 1 == 1;
        cpu && request_tile_permission()
    })
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes this process's permitted xsave
    // features; it reads and writes no user memory.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn request_tile_permission() -> bool {
    false
}
