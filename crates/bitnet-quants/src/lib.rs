//! Tensor encodings: what the bytes of each stored tensor type mean.
//!
//! API CONTRACT (being implemented; signatures are fixed, other crates code against them):
//!
//! * [`Ternary`]: the canonical in-memory ternary tensor every source format decodes to:
//!   row-major trits (`rows × cols`, values −1/0/+1) and ONE multiplicative f32 scale
//!   (dequantized weight = trit · scale).
//! * [`dequantize`]: any supported GGML type (F32, F16, BF16, Q8_0, Q6_K, TQ1_0, TQ2_0, I2_S) → f32.
//! * [`ternary_from_ggml`]: I2_S / TQ1_0 / TQ2_0 bytes → [`Ternary`] (TQ block scales must agree
//!   within the tensor, all-zero blocks excepted; otherwise an error naming the tensor).
//! * [`ternary_from_hf_packed`]: transformers' uint8 `[out/4, in]` packing → [`Ternary`].
//! * [`ternarize_absmean`]: float master weights → [`Ternary`] exactly as transformers'
//!   `WeightQuant` (scale = 1/max(mean|W|, 1e-5), round half-even, clamp; value = t/scale).
//! * Encoders for writers: [`encode_i2s`], [`encode_tq2_0`], [`encode_tq1_0`], [`pack_hf`].
