//! ggml tensor type ids and their storage sizes.
//!
//! Ids follow llama.cpp's `ggml_type` enum, plus bitnet.cpp's `I2_S` (36). Forks disagree on
//! some ids (bitnet.cpp's TL1/TL2 are 38/39 where upstream has MXFP4 at 39), so a reader must
//! check a tensor's byte size against what its type implies; [`GgmlType::data_size`] gives that.

use std::fmt;

/// A ggml tensor element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    Iq2Xxs,
    Iq2Xs,
    Iq3Xxs,
    Iq1S,
    Iq4Nl,
    Iq3S,
    Iq2S,
    Iq4Xs,
    I8,
    I16,
    I32,
    I64,
    F64,
    Iq1M,
    Bf16,
    /// llama.cpp ternary, base-3 packing, 256-element blocks of 54 bytes.
    Tq1_0,
    /// llama.cpp ternary, 2-bit packing, 256-element blocks of 66 bytes.
    Tq2_0,
    /// bitnet.cpp ternary: 2-bit codes for the whole tensor, then one f32 scale in a 32-byte tail.
    I2S,
}

impl GgmlType {
    /// Map a type id read from a file. `None` for ids this crate does not know.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            15 => Q8K,
            16 => Iq2Xxs,
            17 => Iq2Xs,
            18 => Iq3Xxs,
            19 => Iq1S,
            20 => Iq4Nl,
            21 => Iq3S,
            22 => Iq2S,
            23 => Iq4Xs,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => Iq1M,
            30 => Bf16,
            34 => Tq1_0,
            35 => Tq2_0,
            36 => I2S,
            _ => return None,
        })
    }

    /// The id written to a file.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            Q8K => 15,
            Iq2Xxs => 16,
            Iq2Xs => 17,
            Iq3Xxs => 18,
            Iq1S => 19,
            Iq4Nl => 20,
            Iq3S => 21,
            Iq2S => 22,
            Iq4Xs => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            Iq1M => 29,
            Bf16 => 30,
            Tq1_0 => 34,
            Tq2_0 => 35,
            I2S => 36,
        }
    }

    /// Elements per block and bytes per block. I2_S has no blocks in this sense (see
    /// [`GgmlType::data_size`]); it reports (1, 1) as ggml does, which is *not* its real size.
    pub fn block(self) -> (u64, u64) {
        use GgmlType::*;
        match self {
            F32 | I32 => (1, 4),
            F16 | Bf16 | I16 => (1, 2),
            I8 => (1, 1),
            I64 | F64 => (1, 8),
            Q4_0 => (32, 18),
            Q4_1 => (32, 20),
            Q5_0 => (32, 22),
            Q5_1 => (32, 24),
            Q8_0 => (32, 34),
            Q8_1 => (32, 36),
            Iq4Nl => (32, 18),
            Q2K => (256, 84),
            Q3K => (256, 110),
            Q4K => (256, 144),
            Q5K => (256, 176),
            Q6K => (256, 210),
            Q8K => (256, 292),
            Iq2Xxs => (256, 66),
            Iq2Xs => (256, 74),
            Iq3Xxs => (256, 98),
            Iq1S => (256, 50),
            Iq3S => (256, 110),
            Iq2S => (256, 82),
            Iq4Xs => (256, 136),
            Iq1M => (256, 56),
            Tq1_0 => (256, 54),
            Tq2_0 => (256, 66),
            I2S => (1, 1),
        }
    }

    /// Exact byte size of a tensor of this type with `dims` (GGUF order, `dims[0]` contiguous).
    /// Errors when the first dimension is not a whole number of blocks or the size overflows.
    pub fn data_size(self, dims: &[u64]) -> Result<u64, String> {
        let n = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| "element count overflows".to_string())?;
        if self == GgmlType::I2S {
            // bitnet.cpp: n/4 bytes of 2-bit codes, then a 32-byte tail holding the f32 scale.
            if n % 4 != 0 {
                return Err(format!("I2_S needs a multiple of 4 elements, has {n}"));
            }
            return Ok(n / 4 + 32);
        }
        let (bs, ts) = self.block();
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % bs != 0 {
            return Err(format!(
                "{self} needs the first dimension to be a multiple of {bs}, it is {ne0}"
            ));
        }
        (n / bs)
            .checked_mul(ts)
            .ok_or_else(|| "byte size overflows".to_string())
    }

    /// The name ggml prints for this type.
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            Q8K => "Q8_K",
            Iq2Xxs => "IQ2_XXS",
            Iq2Xs => "IQ2_XS",
            Iq3Xxs => "IQ3_XXS",
            Iq1S => "IQ1_S",
            Iq4Nl => "IQ4_NL",
            Iq3S => "IQ3_S",
            Iq2S => "IQ2_S",
            Iq4Xs => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            Iq1M => "IQ1_M",
            Bf16 => "BF16",
            Tq1_0 => "TQ1_0",
            Tq2_0 => "TQ2_0",
            I2S => "I2_S",
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in 0..64 {
            if let Some(t) = GgmlType::from_id(id) {
                assert_eq!(t.id(), id);
            }
        }
        assert_eq!(GgmlType::from_id(36), Some(GgmlType::I2S));
        assert_eq!(GgmlType::from_id(39), None);
    }

    #[test]
    fn sizes_match_manifest() {
        // Sizes from shared/data/bitnetcpp/tiny/MANIFEST.md (written by bitnet.cpp / gguf-py).
        assert_eq!(GgmlType::I2S.data_size(&[1024, 512]), Ok(131104));
        assert_eq!(GgmlType::Tq2_0.data_size(&[1024, 512]), Ok(135168));
        assert_eq!(GgmlType::Tq1_0.data_size(&[512, 128]), Ok(13824));
        assert_eq!(GgmlType::F16.data_size(&[512, 1000]), Ok(1024000));
        assert!(GgmlType::Tq2_0.data_size(&[100, 3]).is_err());
    }
}
