//! The one in-memory weight representation every source format loads into.

use bitnet_kernels::{DenseMatrix, TernaryMatrix};

/// The matrix of a linear layer: ternary (BitLinear) or dense (a module kept in float, e.g. one
/// listed in `modules_to_not_convert`).
#[derive(Clone, Debug)]
pub enum Proj {
    /// `out[r] = (Σ W[r,c]·q[c]) / s_x · scale` with per-token int8 activations.
    Ternary(TernaryMatrix),
    /// `out[r] = Σ W[r,c]·x[c]` in f32, no activation quantization.
    Dense(DenseMatrix),
}

/// One linear layer `out × in` and, for `use_rms_norm` checkpoints, its own input RMSNorm.
#[derive(Clone, Debug)]
pub struct Linear {
    pub proj: Proj,
    /// Input RMSNorm weight, `[in]` (only with `Config::linear_norm_eps`).
    pub input_norm: Option<Vec<f32>>,
}

impl Linear {
    /// Output features (rows).
    pub fn out_features(&self) -> usize {
        match &self.proj {
            Proj::Ternary(m) => m.rows(),
            Proj::Dense(m) => m.rows(),
        }
    }

    /// Input features (columns).
    pub fn in_features(&self) -> usize {
        match &self.proj {
            Proj::Ternary(m) => m.cols(),
            Proj::Dense(m) => m.cols(),
        }
    }

    /// Bytes held in memory by the matrix and norm.
    pub fn bytes(&self) -> usize {
        let m = match &self.proj {
            Proj::Ternary(m) => m.bytes(),
            Proj::Dense(m) => m.bytes(),
        };
        m + self.input_norm.as_ref().map_or(0, |n| n.len() * 4)
    }
}

/// One transformer block.
#[derive(Clone, Debug)]
pub struct Layer {
    /// `[dim]` RMSNorm before attention (`attn_norm`, `input_layernorm`).
    pub attn_norm: Vec<f32>,
    /// `[q_dim × dim]`.
    pub wq: Linear,
    /// `[kv_dim × dim]`.
    pub wk: Linear,
    /// `[kv_dim × dim]`.
    pub wv: Linear,
    /// `[q_dim]` RMSNorm before `wo` (BitNet only).
    pub attn_sub_norm: Option<Vec<f32>>,
    /// `[dim × q_dim]`.
    pub wo: Linear,
    /// `[dim]` RMSNorm before the FFN (`ffn_norm`, `post_attention_layernorm`).
    pub ffn_norm: Vec<f32>,
    /// `[ffn_dim × dim]`.
    pub w_gate: Linear,
    /// `[ffn_dim × dim]`.
    pub w_up: Linear,
    /// `[ffn_dim]` RMSNorm before `w_down` (BitNet only).
    pub ffn_sub_norm: Option<Vec<f32>>,
    /// `[dim × ffn_dim]`.
    pub w_down: Linear,
}

/// All weights of a model.
#[derive(Clone, Debug)]
pub struct Weights {
    /// `[vocab × dim]` token embedding.
    pub token_embd: DenseMatrix,
    pub layers: Vec<Layer>,
    /// `[dim]` final RMSNorm.
    pub output_norm: Vec<f32>,
    /// `[vocab × dim]` output head; `None` = tied to `token_embd`.
    pub output: Option<DenseMatrix>,
}

impl Weights {
    /// The head matrix (`output` or the tied embedding).
    pub fn head(&self) -> &DenseMatrix {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    /// Bytes the weights occupy in memory.
    pub fn bytes(&self) -> usize {
        let norms = |v: &Option<Vec<f32>>| v.as_ref().map_or(0, |v| v.len() * 4);
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                (l.attn_norm.len() + l.ffn_norm.len()) * 4
                    + norms(&l.attn_sub_norm)
                    + norms(&l.ffn_sub_norm)
                    + [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                        .iter()
                        .map(|w| w.bytes())
                        .sum::<usize>()
            })
            .sum();
        self.token_embd.bytes()
            + layers
            + self.output_norm.len() * 4
            + self.output.as_ref().map_or(0, |o| o.bytes())
    }
}
