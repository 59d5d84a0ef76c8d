//! AMX tile primitives shared by the AMX kernels (`ternary/x86_amx.rs`, `dense/q8.rs`):
//! the palette-1 configuration and the handful of instructions they use, as inline assembly
//! (the tile intrinsics are not stable Rust).
//!
//! Every use requires [`crate::Isa::Amx`] to be available: CPUID AMX-TILE/INT8 and the OS's
//! permission for the tile data state, requested once per process.

/// The 64-byte tile configuration (`ldtilecfg` operand, palette 1): every configured tile
/// has 64-byte rows; `rows[t]` rows for tile `t` (0 = unused).
#[repr(C, align(64))]
pub(crate) struct TileCfg([u8; 64]);

impl TileCfg {
    /// Tiles `t` with `rows[t]` rows of 64 bytes (rows ≤ 16).
    pub(crate) fn new(rows: [usize; 8]) -> TileCfg {
        let mut c = [0u8; 64];
        c[0] = 1;
        for (t, &r) in rows.iter().enumerate() {
            debug_assert!(r <= 16);
            if r > 0 {
                c[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
                c[48 + t] = r as u8;
            }
        }
        TileCfg(c)
    }

    /// Load this configuration (zeroes every tile).
    ///
    /// # Safety
    /// AMX is available to this process.
    pub(crate) unsafe fn load(&self) {
        // SAFETY: a valid palette-1 configuration (rows ≤ 16, 64-byte rows); AMX available
        // per the caller.
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) self.0.as_ptr(), options(nostack, readonly))
        };
    }
}

/// Return the tile unit to its initial state.
///
/// # Safety
/// AMX is available to this process.
pub(crate) unsafe fn release() {
    // SAFETY: no operands; AMX available per the caller.
    unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
}

/// Load tile `$t` from `$ptr` with row stride `$stride` bytes (in an `unsafe` context: the
/// tile is configured and every row is readable).
macro_rules! tileload {
    ($t:literal, $ptr:expr, $stride:expr) => {
        std::arch::asm!(concat!("tileloadd tmm", $t, ", [{p} + {s}*1]"),
             p = in(reg) $ptr, s = in(reg) $stride, options(nostack, readonly, preserves_flags))
    };
}
/// Store tile `$t` to `$ptr` with row stride `$stride` bytes (rows writable).
macro_rules! tilestore {
    ($t:literal, $ptr:expr, $stride:expr) => {
        std::arch::asm!(concat!("tilestored [{p} + {s}*1], tmm", $t),
             p = in(reg) $ptr, s = in(reg) $stride, options(nostack, preserves_flags))
    };
}
/// `tmm$c += tmm$a · tmm$b` (signed bytes, i32 accumulators).
macro_rules! tdp {
    ($c:literal, $a:literal, $b:literal) => {
        std::arch::asm!(
            concat!("tdpbssd tmm", $c, ", tmm", $a, ", tmm", $b),
            options(nostack, nomem, preserves_flags)
        )
    };
}
/// Zero tile `$t`.
macro_rules! tilezero {
    ($t:literal) => {
        std::arch::asm!(
            concat!("tilezero tmm", $t),
            options(nostack, nomem, preserves_flags)
        )
    };
}

pub(crate) use {tdp, tileload, tilestore, tilezero};
