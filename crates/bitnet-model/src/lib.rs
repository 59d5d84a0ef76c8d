//! BitNet b1.58 models: configuration, weights loaded from GGUF files and Hugging Face
//! directories, and the reference forward pass with a preallocated KV cache.
//!
//! Layout (llama2.c style): [`Config`] (hyperparameters) / [`Weights`] (one representation
//! whatever the source) / [`State`] (KV cache and scratch buffers, allocated once).
//!
//! ```no_run
//! use bitnet_model::{argmax, Logits, Model, State};
//! let model = Model::load("model.gguf")?; // or an HF directory
//! let mut state = model.new_state(512)?; // KV cache for 512 positions, last-position logits
//! let prompt = [1u32, 450, 4996];
//! let logits = model.forward(&mut state, &prompt, 0, Logits::Last)?; // batched prefill
//! let mut next = argmax(logits) as u32;
//! for _ in 0..16 {
//!     let pos = state.pos();
//!     let logits = model.forward(&mut state, &[next], pos, Logits::Last)?; // decode, no allocation
//!     next = argmax(logits) as u32;
//! }
//! // Logits of every position (`[n × vocab]`) need a state with that many logit rows:
//! let mut full = State::new(&model.config, prompt.len(), prompt.len())?;
//! let all = model.forward(&mut full, &prompt, 0, Logits::All)?;
//! # Ok::<(), bitnet_model::ModelError>(())
//! ```
//!
//! Module map: `config` (hyperparameters), `arch/` (one file per model family), `load/`
//! (GGUF and HF sources), `weights`, `state`, `ops` (RMSNorm, RoPE, attention, activations),
//! `forward` (the pass itself), `hf` (safetensors files), `npy` (.npy reading/writing).

pub mod arch;
mod batch;
mod config;
mod error;
mod forward;
pub mod hf;
pub mod hook;
mod load;
pub mod npy;
pub mod ops;
mod state;
mod weights;

pub use batch::Segment;
pub use config::{Activation, Arch, Config, RopeStyle};
pub use error::{ModelError, Result};
pub use forward::Logits;
pub use load::{config_from_path, is_gguf, set_allow_nonfinite};
pub use state::{KvType, State};
pub use weights::{Layer, Linear, Proj, Weights};

/// A loaded model: hyperparameters and weights.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: Config,
    pub weights: Weights,
}

impl Model {
    /// A state for generation: KV cache of `context` positions, prefill in passes of up to 256
    /// tokens, logits of the last position only (`Logits::Last`). Use [`State::new`] to get
    /// logits for every position.
    pub fn new_state(&self, context: usize) -> Result<State> {
        State::with_logit_rows(&self.config, context, 256, 1)
    }

    /// Replace the output head by an int8 copy with per-row scales (the kernels'
    /// [`to_q8`](bitnet_kernels::DenseMatrix::to_q8)): a quarter of an F32 head's bytes, half
    /// an F16 one's, so decode reads less. A tied head keeps the float embedding for token
    /// lookups and gets its own Q8 `output`. A head that is already int8 is left as it is.
    pub fn quantize_head_q8(&mut self) {
        if matches!(self.weights.head(), bitnet_kernels::DenseMatrix::Q8(_)) {
            return;
        }
        self.weights.output = Some(self.weights.head().to_q8());
    }
}

/// Relative L2 distance `‖a − b‖ / ‖b‖` (b is the reference), in f64.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_l2 of slices of different lengths");
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        num += (x as f64 - y as f64).powi(2);
        den += (y as f64).powi(2);
    }
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}

/// Index of the largest value (the first one on ties); 0 for an empty slice.
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}
