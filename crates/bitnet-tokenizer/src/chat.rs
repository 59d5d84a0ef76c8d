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
//! `parse_special = true` and without an extra BOS (the template already has it) — or, better,
//! call [`ChatTemplate::encode`], which parses special tokens only in the template's own text,
//! so a message that spells `<|eot_id|>` stays text.

use minijinja::{Environment, ErrorKind};

use crate::error::{Result, TokenizerError};
use crate::loader::LoadedTokenizer;
use crate::{Segment, Tokenizer};

/// Instructions one template render may run.
const TEMPLATE_FUEL: u64 = 5_000_000;
/// Bytes a render may write beyond 4× the messages' text. (Checked after rendering: a
/// template that builds a huge string in a few instructions, doubling it in a loop, is not
/// stopped by either bound.)
const TEMPLATE_OUTPUT_BASE: usize = 1 << 20;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
    /// An assistant turn's tool calls, as templates with tool support read them:
    /// `[{"type": "function", "function": {"name", "arguments": {...}}}]` (arguments an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// A `tool` turn's call id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            tool_calls: None,
            tool_call_id: None,
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
    Jinja(Box<Environment<'static>>, Option<ToolFormat>),
}

/// How a template's model writes tool calls, recognised from a Jinja template that renders
/// `tools` itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    /// Hermes / Qwen 2.5 and later: `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`,
    /// one block per call (the template mentions `<tool_call>`).
    Hermes,
    /// Llama 3.1–3.3 JSON tool calling: one `{"name": ..., "parameters": {...}}` object,
    /// optionally after `<|python_tag|>` (the template mentions `ipython` or `<|python_tag|>`).
    Llama3Json,
}

/// The tool-call format of a Jinja template: it must read `tools` and match a known family.
fn detect_tool_format(source: &str) -> Option<ToolFormat> {
    if !source.contains("tools") {
        return None;
    }
    if source.contains("<tool_call>") {
        Some(ToolFormat::Hermes)
    } else if source.contains("ipython") || source.contains("<|python_tag|>") {
        Some(ToolFormat::Llama3Json)
    } else {
        None
    }
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

/// `tojson` as transformers defines it for chat templates: Python's
/// `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)`
/// — by default `", "` and `": "` (`","` before a newline when indenting), keys in their order,
/// non-ASCII text as is, nothing HTML-escaped.
fn tojson(
    value: minijinja::Value,
    kwargs: minijinja::value::Kwargs,
) -> std::result::Result<String, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item, key) = match separators.as_deref() {
        None => (
            if indent.is_some() { "," } else { ", " }.to_string(),
            ": ".to_string(),
        ),
        Some([item, key]) => (item.clone(), key.clone()),
        Some(_) => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "tojson: separators must be (item_separator, key_separator)",
            ))
        }
    };
    let v = serde_json::to_value(&value)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let layout = PyJson {
        indent,
        sort: sort_keys.unwrap_or(false),
        item,
        key,
    };
    let mut out = String::new();
    layout.write(&v, 0, &mut out);
    Ok(out)
}

/// How [`tojson`] lays JSON out.
struct PyJson {
    indent: Option<usize>,
    sort: bool,
    item: String,
    key: String,
}

impl PyJson {
    /// Python `json.dumps` layout of `v` into `out`.
    fn write(&self, v: &serde_json::Value, depth: usize, out: &mut String) {
        use serde_json::Value as J;
        let newline = |out: &mut String, d: usize| {
            if let Some(n) = self.indent {
                out.push('\n');
                out.push_str(&" ".repeat(n * d));
            }
        };
        match v {
            J::Array(a) if a.is_empty() => out.push_str("[]"),
            J::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item);
                    }
                    newline(out, depth + 1);
                    self.write(x, depth + 1, out);
                }
                newline(out, depth);
                out.push(']');
            }
            J::Object(m) if m.is_empty() => out.push_str("{}"),
            J::Object(m) => {
                let mut entries: Vec<(&String, &J)> = m.iter().collect();
                if self.sort {
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                }
                out.push('{');
                for (i, (k, x)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item);
                    }
                    newline(out, depth + 1);
                    out.push_str(&J::String(k.clone()).to_string());
                    out.push_str(&self.key);
                    self.write(x, depth + 1, out);
                }
                newline(out, depth);
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
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
        // A template from a model file is untrusted code: bound the work one render may do
        // (a few thousand instructions per message is typical) and refuse runaway output.
        env.set_fuel(Some(TEMPLATE_FUEL));
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", source.to_string())
            .map_err(tmpl_err)?;
        Ok(ChatTemplate {
            kind: Kind::Jinja(Box::new(env), detect_tool_format(source)),
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
        let arch = t.architecture.as_deref();
        if t.chat_template.is_none()
            && arch.and_then(BuiltinFormat::for_architecture) == Some(BuiltinFormat::Llama3)
            && t.tokenizer.token_to_id("<|start_header_id|>").is_none()
        {
            return Err(TokenizerError::Template(format!(
                "no chat template stored, and the built-in Llama 3 format of architecture `{}` \
                 needs <|start_header_id|>, which this vocabulary lacks (a base model)",
                arch.unwrap_or("llama")
            )));
        }
        ChatTemplate::for_model(
            t.chat_template.as_deref(),
            arch,
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
            Kind::Jinja(..) => "Jinja template".to_string(),
        }
    }

    /// The model's own tool-call format, when this is a Jinja template that renders `tools`
    /// and writes calls in a known format ([`ToolFormat`]); `None` otherwise (callers describe
    /// tools themselves).
    pub fn tool_format(&self) -> Option<ToolFormat> {
        match &self.kind {
            Kind::Jinja(_, f) => *f,
            Kind::Builtin(_) => None,
        }
    }

    /// Render a conversation as segments: the template's own text (special tokens parsed)
    /// and the message contents (raw text). Concatenated, they equal [`ChatTemplate::render`].
    /// For a Jinja template the contents are located by rendering a second time with
    /// placeholders; if that fails (a template that rewrites contents in ways other than
    /// trimming) the whole prompt is one special-parsing segment.
    pub fn render_segments(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<Segment>> {
        self.render_segments_with(messages, None, add_generation_prompt)
    }

    /// [`render_segments`](Self::render_segments) with OpenAI-style `tools` (a JSON array of
    /// `{"type": "function", "function": {...}}`) passed to a Jinja template as `tools`
    /// (built-in formats ignore them).
    pub fn render_segments_with(
        &self,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<Vec<Segment>> {
        let mut segs = Vec::new();
        match &self.kind {
            Kind::Builtin(f) => {
                push_seg(&mut segs, &self.bos_token, true);
                for m in messages {
                    match f {
                        BuiltinFormat::BitNet => {
                            push_seg(&mut segs, &format!("{}: ", capitalize(&m.role)), true)
                        }
                        BuiltinFormat::Llama3 => push_seg(
                            &mut segs,
                            &format!("<|start_header_id|>{}<|end_header_id|>\n\n", m.role),
                            true,
                        ),
                    }
                    push_seg(&mut segs, m.content.trim(), false);
                    push_seg(&mut segs, "<|eot_id|>", true);
                }
                if add_generation_prompt {
                    let opener = match f {
                        BuiltinFormat::BitNet => "Assistant: ",
                        BuiltinFormat::Llama3 => {
                            "<|start_header_id|>assistant<|end_header_id|>\n\n"
                        }
                    };
                    push_seg(&mut segs, opener, true);
                }
            }
            Kind::Jinja(..) => {
                let full = self.render_with(messages, tools, add_generation_prompt)?;
                match self.locate_contents(&full, messages, tools, add_generation_prompt) {
                    Some(s) => segs = s,
                    None => push_seg(&mut segs, &full, true),
                }
            }
        }
        Ok(segs)
    }

    fn locate_contents(
        &self,
        full: &str,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Option<Vec<Segment>> {
        let masked_msgs: Vec<Message> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| Message {
                content: placeholder(i),
                ..m.clone()
            })
            .collect();
        let masked = self
            .render_with(&masked_msgs, tools, add_generation_prompt)
            .ok()?;
        let pieces = split_placeholders(&masked)?;
        let mut segs = Vec::new();
        let mut pos = 0;
        for (k, piece) in pieces.iter().enumerate() {
            match piece {
                Piece::Template(t) => {
                    if !full[pos..].starts_with(t.as_str()) {
                        return None;
                    }
                    push_seg(&mut segs, t, true);
                    pos += t.len();
                }
                Piece::Content(i) => {
                    let c = &messages.get(*i)?.content;
                    let next = match pieces.get(k + 1) {
                        Some(Piece::Template(t)) => t.as_str(),
                        _ => "",
                    };
                    let last = k + 2 >= pieces.len();
                    let fits = |cand: &str| {
                        let rest = &full[pos..];
                        rest.starts_with(cand)
                            && rest[cand.len()..].starts_with(next)
                            && (!last || rest.len() == cand.len() + next.len())
                    };
                    let cand = [c.as_str(), c.trim(), c.trim_start(), c.trim_end()]
                        .into_iter()
                        .find(|cand| fits(cand))?;
                    push_seg(&mut segs, cand, false);
                    pos += cand.len();
                }
            }
        }
        (pos == full.len()).then_some(segs)
    }

    /// Render and encode a conversation for `tok`: special tokens are parsed in the template's
    /// text only, never inside message contents. No BOS is added beyond the template's own.
    pub fn encode(
        &self,
        tok: &dyn Tokenizer,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        self.encode_with(tok, messages, None, add_generation_prompt)
    }

    /// [`encode`](Self::encode) with `tools` for the template (see
    /// [`render_segments_with`](Self::render_segments_with)).
    pub fn encode_with(
        &self,
        tok: &dyn Tokenizer,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>> {
        tok.encode_segments(
            &self.render_segments_with(messages, tools, add_generation_prompt)?,
            false,
        )
    }

    /// Render a conversation. `add_generation_prompt`: end with the assistant's turn opener.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, None, add_generation_prompt)
    }

    /// [`render`](Self::render) with `tools` for a Jinja template.
    pub fn render_with(
        &self,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        match &self.kind {
            Kind::Builtin(f) => Ok(render_builtin(
                *f,
                &self.bos_token,
                messages,
                add_generation_prompt,
            )),
            Kind::Jinja(env, _) => {
                let t = env.get_template("chat").map_err(tmpl_err)?;
                let out = t
                    .render(minijinja::context! {
                        messages => messages,
                        tools => tools,
                        add_generation_prompt => add_generation_prompt,
                        bos_token => &self.bos_token,
                        eos_token => &self.eos_token,
                    })
                    .map_err(tmpl_err)?;
                let limit = TEMPLATE_OUTPUT_BASE
                    + 4 * (messages
                        .iter()
                        .map(|m| {
                            m.content.len()
                                + m.role.len()
                                + m.tool_calls.as_ref().map_or(0, |c| c.to_string().len())
                        })
                        .sum::<usize>()
                        + tools.map_or(0, |t| t.to_string().len()));
                if out.len() > limit {
                    return Err(TokenizerError::Template(format!(
                        "the chat template wrote {} bytes for {} bytes of messages; refusing \
                         (more than {limit})",
                        out.len(),
                        messages.iter().map(|m| m.content.len()).sum::<usize>()
                    )));
                }
                Ok(out)
            }
        }
    }
}

/// Append `text` to `segs`, merging with the last segment when it has the same mode.
fn push_seg(segs: &mut Vec<Segment>, text: &str, parse_special: bool) {
    if text.is_empty() {
        return;
    }
    match segs.last_mut() {
        Some(last) if last.parse_special == parse_special => last.text.push_str(text),
        _ => segs.push(Segment {
            text: text.to_string(),
            parse_special,
        }),
    }
}

/// Placeholder standing for message `i`'s content while locating contents in Jinja output
/// (private-use characters, untouched by case and whitespace filters).
fn placeholder(i: usize) -> String {
    format!("\u{E000}{i}\u{E001}")
}

/// A rendered template split into template text and message contents.
enum Piece {
    Template(String),
    Content(usize),
}

fn split_placeholders(masked: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = masked;
    while let Some(p) = rest.find('\u{E000}') {
        out.push(Piece::Template(rest[..p].to_string()));
        let after = &rest[p + '\u{E000}'.len_utf8()..];
        let end = after.find('\u{E001}')?;
        out.push(Piece::Content(after[..end].parse().ok()?));
        rest = &after[end + '\u{E001}'.len_utf8()..];
    }
    out.push(Piece::Template(rest.to_string()));
    Some(out)
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

#[cfg(test)]
mod hostile_tests {
    use super::*;

    /// A template that loops for ever (or nearly) stops with an error, quickly.
    #[test]
    fn runaway_templates_are_stopped() {
        let msgs = [Message::user("hi")];
        let t0 = std::time::Instant::now();
        for src in [
            "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}",
            "{{ 'x' * 3000000 }}",
        ] {
            let t = ChatTemplate::from_jinja(src, "", "").unwrap();
            let e = match t.render(&msgs, true) {
                Ok(out) => panic!("rendered {} bytes", out.len()),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("fuel") || e.contains("refusing"), "{e}");
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t0.elapsed()
        );
        // An ordinary template is unaffected.
        let t = ChatTemplate::from_jinja(
            "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&msgs, false).unwrap(), "user: hi\n");
    }
}
