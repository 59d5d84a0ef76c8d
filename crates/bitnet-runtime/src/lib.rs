//! The policy of getting a model ready to run, shared by the `bitnet` CLI, `bitnet serve`
//! and the Python bindings: a MODEL argument (a GGUF file, an HF folder, or a Hugging Face
//! repo id fetched into the standard cache) becomes a [`Loaded`] model with its tokenizer,
//! the context to allocate, its chat format, the tokens that end generation and a grammar
//! compiler for structured output. Nothing here prints: what a user should hear comes back
//! as [`Loaded::notes`]; progress is reported through a callback.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bitnet_engine::GrammarCompiler;
use bitnet_model::Model;
use bitnet_tokenizer::chat::ChatTemplate;
use bitnet_tokenizer::{load_tokenizer, LoadedTokenizer};

/// Why a model could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot open model '{spec}': {error}")]
    Resolve {
        spec: String,
        error: Box<bitnet_hub::HubError>,
    },
    #[error("loading the model: {error}")]
    Model {
        path: String,
        error: Box<bitnet_model::ModelError>,
    },
    #[error("loading the tokenizer: {error}")]
    Tokenizer {
        path: String,
        error: Box<bitnet_tokenizer::TokenizerError>,
    },
    #[error("{0}")]
    Invalid(String),
}

/// How to load and run.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// GGUF file, HF folder, or Hugging Face repo id (`owner/name[@rev][:selector]`).
    pub model: String,
    /// A tokenizer to use instead of the model's own.
    pub tokenizer: Option<PathBuf>,
    /// KV cache positions: `None` = the model's context, at most [`DEFAULT_MAX_CONTEXT`];
    /// `Some(0)` = the model's full context.
    pub ctx_size: Option<usize>,
    /// Kernel threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Replace the output head by its int8 form.
    pub head_q8: bool,
    /// Load float tensors holding NaN/±∞.
    pub allow_nonfinite: bool,
}

/// The default context cap when none is asked for.
pub const DEFAULT_MAX_CONTEXT: usize = 4096;

/// A model ready to run.
pub struct Loaded {
    pub model: Model,
    /// `None` when the model carries no tokenizer and none was given; `tokenizer_error` says
    /// why.
    pub tokenizer: Option<LoadedTokenizer>,
    pub tokenizer_error: Option<String>,
    /// Local path the model was loaded from.
    pub path: PathBuf,
    /// KV cache positions to allocate.
    pub context: usize,
    /// Wall time of resolving and loading, ms.
    pub load_ms: f64,
    /// Things the user should be told (warnings), in order.
    pub notes: Vec<String>,
}

/// Check a kernel thread count: at least 1, at most 1024; more than the machine has is
/// allowed with a note.
pub fn check_threads(n: usize) -> Result<Option<String>, RuntimeError> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if n == 0 || n > 1024 {
        return Err(RuntimeError::Invalid(format!(
            "--threads {n}: must be between 1 and 1024 (this machine has {cores} cores)"
        )));
    }
    Ok((n > cores).then(|| {
        format!(
            "--threads {n} is more than the {cores} cores available; the kernels will time-slice"
        )
    }))
}

/// A MODEL argument as a local path: an existing file or folder as is, otherwise a Hugging
/// Face repo id fetched into (or found in) the HF cache (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT,
/// HF_TOKEN, HF_HUB_OFFLINE).
pub fn resolve_model(spec: &str) -> Result<PathBuf, RuntimeError> {
    let opts = bitnet_hub::HubOptions::from_env();
    bitnet_hub::resolve_model(spec, &opts).map_err(|error| RuntimeError::Resolve {
        spec: spec.to_string(),
        error: Box::new(error),
    })
}

/// The weight files of a model: the GGUF itself, or a folder's `*.safetensors`.
pub fn weight_files(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("safetensors"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Resolve and load: `before_load(path, weight_files)` runs once the path is known (the CLI
/// shows progress there).
pub fn load(
    opts: &LoadOptions,
    before_load: &mut dyn FnMut(&Path, &[PathBuf]),
) -> Result<Loaded, RuntimeError> {
    let mut notes = Vec::new();
    if let Some(n) = opts.threads {
        notes.extend(check_threads(n)?);
        bitnet_kernels::set_num_threads(n);
    }
    if opts.allow_nonfinite {
        bitnet_model::set_allow_nonfinite(true);
        notes.push(
            "--allow-nonfinite: tensors holding NaN or infinite values are loaded as they are"
                .into(),
        );
    }
    let t0 = Instant::now();
    let path = resolve_model(&opts.model)?;
    let files = weight_files(&path);
    before_load(&path, &files);
    let mut model = Model::load(&path).map_err(|error| RuntimeError::Model {
        path: path.display().to_string(),
        error: Box::new(error),
    })?;
    if opts.head_q8 {
        model.quantize_head_q8();
    }
    let (mut tokenizer, tokenizer_error) = match &opts.tokenizer {
        Some(t) => (
            Some(load_tokenizer(t).map_err(|error| RuntimeError::Tokenizer {
                path: t.display().to_string(),
                error: Box::new(error),
            })?),
            None,
        ),
        None => match load_tokenizer(&path) {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    if let Some(t) = tokenizer.as_mut() {
        // A tokenizer file on its own does not say which model it belongs to: the model's
        // architecture then picks the built-in chat format.
        if t.architecture.is_none() {
            t.architecture = Some(model.config.arch_name.clone());
        }
        let n = t.tokenizer.vocab_size();
        if n > model.config.vocab_size {
            notes.push(format!(
                "the tokenizer ({}) has {n} tokens but the model only {}; ids past the model's \
                 vocabulary cannot be generated",
                t.source.display(),
                model.config.vocab_size
            ));
        }
    }
    let max = model.config.max_context.max(1);
    let context = match opts.ctx_size {
        None => max.min(DEFAULT_MAX_CONTEXT),
        Some(0) => max,
        Some(n) => {
            if n > max {
                notes.push(format!(
                    "--ctx-size {n} is larger than the {max} positions the model was trained \
                     for; output past that is unreliable"
                ));
            }
            n
        }
    };
    Ok(Loaded {
        model,
        tokenizer,
        tokenizer_error,
        path,
        context,
        load_ms: t0.elapsed().as_secs_f64() * 1000.0,
        notes,
    })
}

impl Loaded {
    /// Token ids that end generation: the tokenizer's EOS/EOT set, else the model config's
    /// EOS.
    pub fn stop_tokens(&self) -> Vec<u32> {
        match &self.tokenizer {
            Some(t) => t.tokenizer.special_tokens().eog.clone(),
            None => self.model.config.eos_token_id.into_iter().collect(),
        }
    }

    /// The chat format: the stored template, a built-in one for the architecture, or the
    /// reason there is none (a base model).
    pub fn chat_template(&self) -> Result<ChatTemplate, String> {
        let t = self.tokenizer.as_ref().ok_or("no tokenizer")?;
        ChatTemplate::from_loaded(t).map_err(|e| e.to_string())
    }

    /// A grammar compiler for structured output over this tokenizer and vocabulary; the
    /// token that ends a finished document is the end of turn, else the end of text.
    pub fn grammar(&self) -> Result<Arc<GrammarCompiler>, String> {
        let t = self.tokenizer.as_ref().ok_or("no tokenizer")?;
        let special = t.tokenizer.special_tokens();
        let eos = special
            .eot
            .or(special.eos)
            .or(self.stop_tokens().first().copied())
            .ok_or("the tokenizer has no end-of-text token")?;
        GrammarCompiler::new(t.tokenizer.clone(), self.model.config.vocab_size, eos)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }
}
