//! Chat formats: turning a conversation into a prompt string.
//!
//! Built-in formats:
//! - [`BuiltinFormat::BitNet`]: BitNet b1.58 2B4T (`microsoft/bitnet-b1.58-2B-4T`'s
//!   `tokenizer_config.json` template): BOS, then per message
//!   `Role: content<|eot_id|>` (role capitalized: System/User/Assistant; content trimmed), and
//!   `Assistant: ` as the generation prompt.
//! - [`BuiltinFormat::Llama3`]: Llama 3 Instruct headers:
//!   `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` (content trimmed).
//!
//! Jinja templates (from `tokenizer_config.json` or the GGUF key `tokenizer.chat_template`)
//! are rendered with minijinja the way transformers does (`trim_blocks`, `lstrip_blocks`,
//! `raise_exception`, Python string methods). A stored template that is known to be broken —
//! the placeholder bitnet.cpp's converter writes into every BitNet GGUF (`Human: ...
//! BITNETAssistant: `) — is replaced by the architecture's built-in format, and
//! [`ChatTemplate::override_note`] says so.
//!
//! The rendered prompt contains special-token spellings: encode it with
//! `parse_special = true` and without an extra BOS (the template already has it).

use minijinja::{Environment, ErrorKind};

use crate::error::{Result, TokenizerError};
use crate::loader::LoadedTokenizer;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
    /// A system prompt.
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }
    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }
}

/// Chat formats implemented in code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinFormat {
    /// BitNet b1.58 2B4T: `Role: content<|eot_id|>`, generation prompt `Assistant: `.
    BitNet,
    /// Llama 3 Instruct header format.
    Llama3,
}

impl BuiltinFormat {
    /// The format for a model architecture (GGUF `general.architecture` or HF `model_type`).
    pub fn for_architecture(arch: &str) -> Option<BuiltinFormat> {
        let a = arch.to_ascii_lowercase();
        if a.starts_with("bitnet") {
            Some(BuiltinFormat::BitNet)
        } else if a == "llama" || a == "llama3" {
            Some(BuiltinFormat::Llama3)
        } else {
            None
        }
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinFormat::BitNet => "bitnet (2B4T)",
            BuiltinFormat::Llama3 => "llama3",
        }
    }
}

/// Whether a stored template is a known-broken placeholder: bitnet.cpp's converter hard-codes
/// `{{ 'Human: ' + message['content'] + '\n\nBITNETAssistant: ' + eos_token }}`, which ends
/// every user turn with EOS and never matches what the model was trained on.
pub fn is_known_broken(template: &str) -> bool {
    template.contains("BITNETAssistant")
}

/// Where a [`ChatTemplate`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// Built or compiled directly by the caller ([`ChatTemplate::builtin`] /
    /// [`ChatTemplate::from_jinja`]).
    Explicit,
    /// The model's stored Jinja template, used as is.
    Stored,
    /// The model's stored template is known broken; the architecture's built-in format is used.
    BrokenReplaced,
    /// No template stored; the architecture's built-in format is used.
    ArchitectureDefault,
}

enum Kind {
    Builtin(BuiltinFormat),
    Jinja(Box<Environment<'static>>),
}

/// A chat template ready to render.
pub struct ChatTemplate {
    kind: Kind,
    bos_token: String,
    eos_token: String,
    override_note: Option<String>,
    source: TemplateSource,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChatTemplate({})", self.describe())
    }
}

fn raise_exception(msg: String) -> std::result::Result<String, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

fn tmpl_err(e: minijinja::Error) -> TokenizerError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    TokenizerError::Template(msg)
}

impl ChatTemplate {
    /// A built-in format. `bos_token`: the BOS spelling to start with (e.g.
    /// `<|begin_of_text|>`; empty for none).
    pub fn builtin(format: BuiltinFormat, bos_token: &str) -> ChatTemplate {
        ChatTemplate {
            kind: Kind::Builtin(format),
            bos_token: bos_token.to_string(),
            eos_token: String::new(),
            override_note: None,
            source: TemplateSource::Explicit,
        }
    }

    /// Compile a Jinja template (HF `chat_template`). `bos_token` / `eos_token` are exposed to
    /// the template under those names.
    pub fn from_jinja(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_template_owned("chat", source.to_string())
            .map_err(tmpl_err)?;
        Ok(ChatTemplate {
            kind: Kind::Jinja(Box::new(env)),
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
            override_note: None,
            source: TemplateSource::Explicit,
        })
    }

    /// Choose the template for a model: the stored Jinja template unless it is missing or
    /// known broken, in which case the architecture's built-in format (if any).
    pub fn for_model(
        stored: Option<&str>,
        architecture: Option<&str>,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate> {
        let builtin = architecture.and_then(BuiltinFormat::for_architecture);
        match (stored, builtin) {
            (Some(t), Some(f)) if is_known_broken(t) => {
                let mut c = ChatTemplate::builtin(f, bos_token);
                c.eos_token = eos_token.to_string();
                c.override_note = Some(format!(
                    "the stored chat template is bitnet.cpp's known-broken placeholder \
                     ('Human: ... BITNETAssistant: '); using the built-in {} format instead",
                    f.name()
                ));
                c.source = TemplateSource::BrokenReplaced;
                Ok(c)
            }
            (Some(t), None) if is_known_broken(t) => Err(TokenizerError::Template(
                "the stored chat template is a known-broken placeholder and the architecture \
                 has no built-in format"
                    .into(),
            )),
            (Some(t), _) => {
                let mut c = ChatTemplate::from_jinja(t, bos_token, eos_token)?;
                c.source = TemplateSource::Stored;
                Ok(c)
            }
            (None, Some(f)) => {
                let mut c = ChatTemplate::builtin(f, bos_token);
                c.eos_token = eos_token.to_string();
                c.override_note = Some(format!(
                    "no chat template stored; using the built-in {} format for architecture `{}`",
                    f.name(),
                    architecture.unwrap_or("?")
                ));
                c.source = TemplateSource::ArchitectureDefault;
                Ok(c)
            }
            (None, None) => Err(TokenizerError::Template(format!(
                "no chat template stored and no built-in format for architecture `{}`",
                architecture.unwrap_or("unknown")
            ))),
        }
    }

    /// The template for a loaded tokenizer (stored template, architecture, BOS/EOS spellings).
    /// A Llama-architecture model without a template gets the Llama 3 format only if its
    /// vocabulary has `<|start_header_id|>`.
    pub fn from_loaded(t: &LoadedTokenizer) -> Result<ChatTemplate> {
        let mut arch = t.architecture.clone();
        if arch.as_deref().and_then(BuiltinFormat::for_architecture) == Some(BuiltinFormat::Llama3)
            && t.tokenizer.token_to_id("<|start_header_id|>").is_none()
        {
            arch = None;
        }
        ChatTemplate::for_model(
            t.chat_template.as_deref(),
            arch.as_deref(),
            t.bos_token.as_deref().unwrap_or(""),
            t.eos_token.as_deref().unwrap_or(""),
        )
    }

    /// Why the model's stored template was not used as is (for `inspect` and logs): set when
    /// a known-broken template was replaced or no template was stored.
    pub fn override_note(&self) -> Option<&str> {
        self.override_note.as_deref()
    }

    /// Whether a stored, known-broken template was replaced by a built-in format.
    pub fn is_overridden(&self) -> bool {
        self.source == TemplateSource::BrokenReplaced
    }

    /// Where this template came from.
    pub fn source(&self) -> TemplateSource {
        self.source
    }

    /// One-line description.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Builtin(f) => format!("built-in {}", f.name()),
            Kind::Jinja(_) => "Jinja template".to_string(),
        }
    }

    /// Render a conversation. `add_generation_prompt`: end with the assistant's turn opener.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        match &self.kind {
            Kind::Builtin(f) => Ok(render_builtin(
                *f,
                &self.bos_token,
                messages,
                add_generation_prompt,
            )),
            Kind::Jinja(env) => {
                let t = env.get_template("chat").map_err(tmpl_err)?;
                t.render(minijinja::context! {
                    messages => messages,
                    add_generation_prompt => add_generation_prompt,
                    bos_token => &self.bos_token,
                    eos_token => &self.eos_token,
                })
                .map_err(tmpl_err)
            }
        }
    }
}

/// Python's `str.capitalize`: first character upper case, the rest lower case.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn render_builtin(f: BuiltinFormat, bos: &str, messages: &[Message], add_gen: bool) -> String {
    let mut s = String::from(bos);
    match f {
        BuiltinFormat::BitNet => {
            for m in messages {
                s.push_str(&capitalize(&m.role));
                s.push_str(": ");
                s.push_str(m.content.trim());
                s.push_str("<|eot_id|>");
            }
            if add_gen {
                s.push_str("Assistant: ");
            }
        }
        BuiltinFormat::Llama3 => {
            for m in messages {
                s.push_str("<|start_header_id|>");
                s.push_str(&m.role);
                s.push_str("<|end_header_id|>\n\n");
                s.push_str(m.content.trim());
                s.push_str("<|eot_id|>");
            }
            if add_gen {
                s.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
        }
    }
    s
}
