//! Named model shapes for synthetic checkpoints.

/// Hyperparameters of a BitNet b1.58 (`BitNetForCausalLM`) model: relu², sub-norms, tied
/// embeddings, RoPE θ 500000, RMSNorm eps 1e-5, context 4096.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub name: &'static str,
    pub vocab: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub bos: u32,
    pub eos: u32,
    pub rope_theta: f32,
    pub rms_eps: f32,
    pub context: usize,
}

impl Shape {
    /// The named shapes: `tiny` (head_dim 64, 2:1 GQA), `gqa` (head_dim 128, 4:1 GQA),
    /// `2b4t` (microsoft/bitnet-b1.58-2B-4T).
    pub const NAMES: [&'static str; 3] = ["tiny", "gqa", "2b4t"];

    /// Look a shape up by name.
    pub fn named(name: &str) -> Option<Shape> {
        let base = Shape {
            name: "tiny",
            vocab: 512,
            hidden: 256,
            ffn: 512,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            bos: 1,
            eos: 2,
            rope_theta: 500000.0,
            rms_eps: 1e-5,
            context: 4096,
        };
        Some(match name {
            "tiny" => base,
            "gqa" => Shape {
                name: "gqa",
                vocab: 1024,
                hidden: 1024,
                ffn: 2048,
                heads: 8,
                kv_heads: 2,
                ..base
            },
            "2b4t" => Shape {
                name: "2b4t",
                vocab: 128256,
                hidden: 2560,
                ffn: 6912,
                layers: 30,
                heads: 20,
                kv_heads: 5,
                bos: 128000,
                eos: 128001,
                ..base
            },
            _ => return None,
        })
    }

    /// Dimension of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Width of K and V: `kv_heads · head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }
}

/// The seven ternary projections of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proj {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Proj {
    /// All projections, in the order the writers emit them.
    pub const ALL: [Proj; 7] = [
        Proj::Q,
        Proj::K,
        Proj::V,
        Proj::O,
        Proj::Gate,
        Proj::Up,
        Proj::Down,
    ];

    /// `(out_features, in_features)`.
    pub fn dims(self, s: &Shape) -> (usize, usize) {
        match self {
            Proj::Q | Proj::O => (s.hidden, s.hidden),
            Proj::K | Proj::V => (s.kv_dim(), s.hidden),
            Proj::Gate | Proj::Up => (s.ffn, s.hidden),
            Proj::Down => (s.hidden, s.ffn),
        }
    }

    /// Hugging Face name of layer `l`'s weight.
    pub fn hf_name(self, l: usize) -> String {
        let m = match self {
            Proj::Q => "self_attn.q_proj",
            Proj::K => "self_attn.k_proj",
            Proj::V => "self_attn.v_proj",
            Proj::O => "self_attn.o_proj",
            Proj::Gate => "mlp.gate_proj",
            Proj::Up => "mlp.up_proj",
            Proj::Down => "mlp.down_proj",
        };
        format!("model.layers.{l}.{m}.weight")
    }

    /// GGUF name of layer `l`'s weight.
    pub fn gguf_name(self, l: usize) -> String {
        let m = match self {
            Proj::Q => "attn_q",
            Proj::K => "attn_k",
            Proj::V => "attn_v",
            Proj::O => "attn_output",
            Proj::Gate => "ffn_gate",
            Proj::Up => "ffn_up",
            Proj::Down => "ffn_down",
        };
        format!("blk.{l}.{m}.weight")
    }
}

/// The RMSNorm weights: four per layer and the final one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `input_layernorm` / `attn_norm`, width hidden.
    Input,
    /// `self_attn.attn_sub_norm` / `attn_sub_norm`, width hidden.
    AttnSub,
    /// `post_attention_layernorm` / `ffn_norm`, width hidden.
    PostAttn,
    /// `mlp.ffn_sub_norm` / `ffn_sub_norm`, width ffn.
    FfnSub,
    /// `model.norm` / `output_norm` (layer index ignored), width hidden.
    Final,
}

impl Norm {
    /// The per-layer norms.
    pub const LAYER: [Norm; 4] = [Norm::Input, Norm::AttnSub, Norm::PostAttn, Norm::FfnSub];

    /// Width of the norm.
    pub fn width(self, s: &Shape) -> usize {
        match self {
            Norm::FfnSub => s.ffn,
            _ => s.hidden,
        }
    }

    /// Hugging Face name (layer `l`).
    pub fn hf_name(self, l: usize) -> String {
        match self {
            Norm::Input => format!("model.layers.{l}.input_layernorm.weight"),
            Norm::AttnSub => format!("model.layers.{l}.self_attn.attn_sub_norm.weight"),
            Norm::PostAttn => format!("model.layers.{l}.post_attention_layernorm.weight"),
            Norm::FfnSub => format!("model.layers.{l}.mlp.ffn_sub_norm.weight"),
            Norm::Final => "model.norm.weight".into(),
        }
    }

    /// GGUF name (layer `l`).
    pub fn gguf_name(self, l: usize) -> String {
        match self {
            Norm::Input => format!("blk.{l}.attn_norm.weight"),
            Norm::AttnSub => format!("blk.{l}.attn_sub_norm.weight"),
            Norm::PostAttn => format!("blk.{l}.ffn_norm.weight"),
            Norm::FfnSub => format!("blk.{l}.ffn_sub_norm.weight"),
            Norm::Final => "output_norm.weight".into(),
        }
    }
}

/// Hugging Face name of the token embedding.
pub const HF_EMBED: &str = "model.embed_tokens.weight";
/// GGUF name of the token embedding.
pub const GGUF_EMBED: &str = "token_embd.weight";
