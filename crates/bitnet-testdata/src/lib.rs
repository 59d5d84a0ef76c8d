//! Test-only helpers (a dev-dependency of the other crates): where the shared test data
//! (`/work/shared`, see its README.md) and the workspace's checked-in fixtures are.
//!
//! Policy for the shared data, in one place: `$BITNET_SHARED`, else `<workspace>/../shared`;
//! when it is missing a test returns early after printing `SKIPPED: ...`, except under
//! `CI=true`, where a missing folder is a failure (CI must run every test).

use std::path::PathBuf;

/// The workspace root (the folder holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The workspace's checked-in reference outputs (`<workspace>/fixtures`).
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("fixtures")
}

/// Where the shared data folder should be: `$BITNET_SHARED`, else `<workspace>/../shared`.
/// Not checked; see [`shared_dir`].
pub fn shared_path() -> PathBuf {
    std::env::var_os("BITNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"))
}

/// The shared data folder (one holding `data/`), or `None` after printing
/// `SKIPPED: shared data not found at ...` when it is absent.
///
/// # Panics
/// When it is absent and `CI=true`.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = shared_path();
    if dir.join("data").is_dir() {
        Some(dir)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "shared data not found at {} (set BITNET_SHARED)",
            dir.display()
        );
    } else {
        eprintln!("SKIPPED: shared data not found at {}", dir.display());
        None
    }
}

/// A file or folder under the shared data folder (`rel` relative to it, e.g.
/// `data/bitnetcpp/tiny/model-i2_s.gguf`), with the same skip/CI policy as [`shared_dir`].
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    shared_dir().map(|d| d.join(rel))
}

/// A Hermes-style chat template for tool-calling tests, written for this project in the shape of Hermes 2 Pro / Qwen 2.5
/// templates: tools listed in `<tools>`, calls in `<tool_call>` blocks, results in
/// `<tool_response>`).
pub const HERMES_STYLE_TEMPLATE: &str = r#"{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools

<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>

Call a function with <tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{% for tc in message.tool_calls %}<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}
</tool_call>{% endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% elif not (tools and message.role == 'system') %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let toml = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(toml.contains("[workspace]"), "{toml}");
        assert!(toml.contains("crates/bitnet-testdata"));
    }

    #[test]
    fn fixtures_dir_is_the_checked_in_one() {
        assert!(fixtures_dir().join("transformers").is_dir());
    }
}
