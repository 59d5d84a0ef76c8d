//! transformers' packed ternary layout (`integrations/bitnet.py`, `pack_weights` /
//! `unpack_weights`): uint8 `[out/4, in]`; output row o lives in packed row `o mod (out/4)`
//! at bits `2·(o div (out/4))`; code = w + 1.

use crate::error::check_size;
use crate::{QuantError, Ternary};

fn check_rows(out_features: usize) -> Result<usize, QuantError> {
    if !out_features.is_multiple_of(4) {
        return Err(QuantError::BadShape {
            format: "HF packed".into(),
            reason: format!("out_features {out_features} is not a multiple of 4"),
        });
    }
    Ok(out_features / 4)
}

/// Unpack transformers' uint8 packing (`packed` is `[out/4, in]` row-major) into trits with
/// the given multiplicative `scale`. (For `linear_class: bitlinear`, whose `weight_scale`
/// divides, the caller decides how to express the scale.) Code 3 is an error.
pub fn ternary_from_hf_packed(
    packed: &[u8],
    out_features: usize,
    in_features: usize,
    scale: f32,
) -> Result<Ternary, QuantError> {
    let pr = check_rows(out_features)?;
    let n = out_features
        .checked_mul(in_features)
        .ok_or_else(|| QuantError::BadShape {
            format: "HF packed".into(),
            reason: format!("{out_features} × {in_features} overflows"),
        })?;
    check_size("HF packed uint8", n, (n / 4) as u64, packed.len())?;
    let mut trits = vec![0i8; n];
    for (o, row) in trits.chunks_exact_mut(in_features.max(1)).enumerate() {
        let src = &packed[(o % pr) * in_features..(o % pr + 1) * in_features];
        let shift = 2 * (o / pr);
        for (i, (t, &b)) in row.iter_mut().zip(src).enumerate() {
            let code = (b >> shift) & 3;
            if code == 3 {
                return Err(QuantError::InvalidCode {
                    format: "HF packed",
                    index: (o * in_features + i) as u64,
                });
            }
            *t = code as i8 - 1;
        }
    }
    Ok(Ternary {
        rows: out_features,
        cols: in_features,
        trits,
        scale,
    })
}

/// Pack trits as transformers' `pack_weights` does: uint8 `[rows/4, cols]` row-major.
pub fn pack_hf(t: &Ternary) -> Result<Vec<u8>, QuantError> {
    t.validate()?;
    let pr = check_rows(t.rows)?;
    let mut out = vec![0u8; pr * t.cols];
    for (o, row) in t.trits.chunks_exact(t.cols.max(1)).enumerate() {
        let dst = &mut out[(o % pr) * t.cols..(o % pr + 1) * t.cols];
        let shift = 2 * (o / pr);
        for (d, &w) in dst.iter_mut().zip(row) {
            *d |= ((w + 1) as u8) << shift;
        }
    }
    Ok(out)
}
