//! Tool calling, in two ways:
//!
//! - **Native**: a model whose Jinja chat template renders `tools` itself and writes calls in
//!   a known format ([`ToolFormat`]: Hermes/Qwen `<tool_call>` blocks, Llama 3.1 JSON) gets the
//!   tools through its template and answers in its own format; `auto` leaves the answer free
//!   (text, or one or more calls, parsed afterwards), `required` / a named function
//!   constrains it (llguidance) to exactly one call in that format.
//! - **Generic**, for every other model, the way llama.cpp's generic handler does it: the
//!   tools are described in a system message, the answer is constrained to one JSON object,
//!   either `{"tool_call": {"name": ..., "arguments": {...}}}` or `{"response": "..."}`.
//!
//! Under a constraint the grammar only admits the declared tools and their parameter schemas,
//! so the arguments always parse and validate.

pub use bitnet_tokenizer::chat::ToolFormat;
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// One declared function.
#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// What the request allows.
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// The model answers or calls a tool, as it likes.
    Auto,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Named(String),
}

/// Tools of a request and how they may be used.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub tools: Vec<Tool>,
    pub choice: Choice,
}

/// How the model sees tools and writes calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Described in a system message; answers are one constrained JSON object.
    Generic,
    /// The chat template's own format.
    Native(ToolFormat),
}

/// A constraint for an answer: a JSON schema or a Lark grammar (llguidance syntax).
#[derive(Clone, Debug, PartialEq)]
pub enum Grammar {
    JsonSchema(Value),
    Lark(String),
}

/// One parsed call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: String,
    /// The arguments as a JSON text (OpenAI sends them as a string).
    pub arguments: String,
}

/// Parse `tools` and `tool_choice`; `None` when there are no tools or `tool_choice` is
/// `"none"`.
pub fn parse(o: &Map<String, Value>) -> Result<Option<ToolSpec>, ApiError> {
    let tools = match o.get("tools") {
        None | Some(Value::Null) => return check_choice_without_tools(o),
        Some(Value::Array(a)) if a.is_empty() => return check_choice_without_tools(o),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(ApiError::param(
                "tools",
                format!("expected an array, got {v}"),
            ))
        }
    };
    let mut out: Vec<Tool> = Vec::new();
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        let bad = |m: &str| ApiError::invalid(Some(p.clone()), format!("'{p}': {m}"));
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(bad("only tools of type \"function\" are supported"));
        }
        let f = t
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("missing 'function' object"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| {
                !n.is_empty()
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .ok_or_else(|| bad("'function.name' must be 1-64 letters, digits, '_' or '-'"))?;
        if out.iter().any(|o| o.name == name) {
            return Err(bad(&format!("function name '{name}' is declared twice")));
        }
        let parameters = match f.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(v) => {
                return Err(bad(&format!(
                    "'function.parameters' must be a JSON schema object, got {v}"
                )))
            }
        };
        out.push(Tool {
            name: name.to_string(),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            parameters,
        });
    }
    let choice = match o.get("tool_choice") {
        None | Some(Value::Null) => Choice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Choice::Auto,
            "required" => Choice::Required,
            "none" => return Ok(None),
            other => {
                return Err(ApiError::param(
                    "tool_choice",
                    format!(
                        "unknown value '{other}' (expected none, auto, required or a function)"
                    ),
                ))
            }
        },
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::param(
                        "tool_choice",
                        "expected {\"type\": \"function\", \"function\": {\"name\": ...}}",
                    )
                })?;
            if !out.iter().any(|t| t.name == name) {
                return Err(ApiError::param(
                    "tool_choice",
                    format!("function '{name}' is not among the tools"),
                ));
            }
            Choice::Named(name.to_string())
        }
    };
    Ok(Some(ToolSpec { tools: out, choice }))
}

fn check_choice_without_tools(o: &Map<String, Value>) -> Result<Option<ToolSpec>, ApiError> {
    match o.get("tool_choice") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "none" || s == "auto" => Ok(None),
        Some(_) => Err(ApiError::param(
            "tool_choice",
            "a tool was required but no tools were given",
        )),
    }
}

impl ToolSpec {
    /// The tools allowed by the choice.
    fn allowed(&self) -> impl Iterator<Item = &Tool> {
        self.tools.iter().filter(move |t| match &self.choice {
            Choice::Named(n) => &t.name == n,
            _ => true,
        })
    }

    /// The request's tools as chat templates read them (OpenAI's shape).
    pub fn template_tools(&self) -> Value {
        Value::Array(
            self.tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect(),
        )
    }

    /// The constraint for an answer in `format`: always for the generic format; for a native
    /// one only when a call is required (under `auto` the model may answer in text).
    pub fn grammar(&self, format: Format) -> Option<Grammar> {
        let one_of = |key: &str| {
            let alts: Vec<Value> = self
                .allowed()
                .map(|t| {
                    json!({
                        "type": "object",
                        "properties": {"name": {"const": t.name}, key: t.parameters},
                        "required": ["name", key],
                        "additionalProperties": false,
                    })
                })
                .collect();
            if alts.len() == 1 {
                alts.into_iter().next().unwrap_or_default()
            } else {
                json!({ "anyOf": alts })
            }
        };
        match format {
            Format::Generic => Some(Grammar::JsonSchema(self.schema())),
            Format::Native(_) if self.choice == Choice::Auto => None,
            Format::Native(ToolFormat::Hermes) => {
                // Laid out as json.dumps does (the JSON-schema path sets the same options):
                // free whitespace would let a model pad the call forever.
                let mut schema = one_of("arguments");
                schema["x-guidance"] = json!({
                    "whitespace_flexible": false,
                    "item_separator": ", ",
                    "key_separator": ": ",
                });
                Some(Grammar::Lark(format!(
                    "start: \"<tool_call>\\n\" call \"\\n</tool_call>\"\ncall: %json {schema}\n"
                )))
            }
            Format::Native(ToolFormat::Llama3Json) => {
                Some(Grammar::JsonSchema(one_of("parameters")))
            }
        }
    }

    /// Read an answer in `format`: the calls it makes (if any) and its text content.
    pub fn parse_answer(&self, format: Format, text: &str) -> (Vec<Call>, Option<String>) {
        match format {
            Format::Generic => match parse_answer(text) {
                Parsed::Call { name, arguments } => (vec![Call { name, arguments }], None),
                Parsed::Text(t) => (Vec::new(), Some(t)),
            },
            Format::Native(ToolFormat::Hermes) => self.parse_hermes(text),
            Format::Native(ToolFormat::Llama3Json) => self.parse_llama3(text),
        }
    }

    fn declared(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t.name == name)
    }

    /// `<tool_call>{"name", "arguments"}</tool_call>` blocks; text outside them is content.
    /// An answer whose blocks do not all parse (cut short, or naming an undeclared tool) is
    /// returned whole as content.
    fn parse_hermes(&self, text: &str) -> (Vec<Call>, Option<String>) {
        const OPEN: &str = "<tool_call>";
        const CLOSE: &str = "</tool_call>";
        let whole = || (Vec::new(), Some(text.to_string()));
        let mut calls = Vec::new();
        let mut content = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(OPEN) {
            content.push_str(&rest[..i]);
            let body = &rest[i + OPEN.len()..];
            let Some(j) = body.find(CLOSE) else {
                return whole();
            };
            let Ok(v) = serde_json::from_str::<Value>(body[..j].trim()) else {
                return whole();
            };
            let (Some(name), Some(args)) =
                (v.get("name").and_then(Value::as_str), v.get("arguments"))
            else {
                return whole();
            };
            if !self.declared(name) {
                return whole();
            }
            calls.push(Call {
                name: name.to_string(),
                arguments: args.to_string(),
            });
            rest = &body[j + CLOSE.len()..];
        }
        content.push_str(rest);
        let content = content.trim();
        (calls, (!content.is_empty()).then(|| content.to_string()))
    }

    /// One JSON object `{"name", "parameters"}` (or `"arguments"`), optionally after
    /// `<|python_tag|>`, naming a declared tool; anything else is content.
    fn parse_llama3(&self, text: &str) -> (Vec<Call>, Option<String>) {
        let t = text.trim();
        let t = t.strip_prefix("<|python_tag|>").unwrap_or(t).trim();
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            let args = v.get("parameters").or_else(|| v.get("arguments"));
            if let (Some(name), Some(args)) = (v.get("name").and_then(Value::as_str), args) {
                if self.declared(name) && args.is_object() {
                    return (
                        vec![Call {
                            name: name.to_string(),
                            arguments: args.to_string(),
                        }],
                        None,
                    );
                }
            }
        }
        (Vec::new(), Some(text.to_string()))
    }

    /// The JSON schema of the generic format's answer.
    pub fn schema(&self) -> Value {
        let call = |t: &Tool| {
            json!({
                "type": "object",
                "properties": {
                    "tool_call": {
                        "type": "object",
                        "properties": {"name": {"const": t.name}, "arguments": t.parameters},
                        "required": ["name", "arguments"],
                        "additionalProperties": false,
                    }
                },
                "required": ["tool_call"],
                "additionalProperties": false,
            })
        };
        let mut alts: Vec<Value> = match &self.choice {
            Choice::Named(n) => self
                .tools
                .iter()
                .filter(|t| &t.name == n)
                .map(call)
                .collect(),
            _ => self.tools.iter().map(call).collect(),
        };
        if self.choice == Choice::Auto {
            alts.push(json!({
                "type": "object",
                "properties": {"response": {"type": "string"}},
                "required": ["response"],
                "additionalProperties": false,
            }));
        }
        if alts.len() == 1 {
            alts.pop().unwrap_or_default()
        } else {
            json!({"anyOf": alts})
        }
    }

    /// The system text that describes the tools and the answer format.
    pub fn system_prompt(&self) -> String {
        let list: Vec<Value> = self
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        let how = match &self.choice {
            Choice::Auto => "Answer with one JSON object: {\"tool_call\": {\"name\": <tool name>, \"arguments\": <arguments>}} to call a tool, or {\"response\": <your answer>} to answer the user directly.",
            Choice::Required => "Answer with one JSON object that calls one of them: {\"tool_call\": {\"name\": <tool name>, \"arguments\": <arguments>}}.",
            Choice::Named(_) => "Answer with one JSON object that calls it: {\"tool_call\": {\"name\": <tool name>, \"arguments\": <arguments>}}.",
        };
        format!(
            "You can use these tools:\n{}\n{how}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        )
    }
}

/// What an answer under a tool grammar says.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    Call { name: String, arguments: String },
    Text(String),
}

/// Read an answer; text that is not one of the two shapes (an answer cut short by
/// `max_tokens`) is returned as it is.
pub fn parse_answer(text: &str) -> Parsed {
    let Ok(v) = serde_json::from_str::<Value>(text.trim()) else {
        return Parsed::Text(text.to_string());
    };
    if let Some(c) = v.get("tool_call") {
        if let (Some(name), Some(args)) =
            (c.get("name").and_then(Value::as_str), c.get("arguments"))
        {
            return Parsed::Call {
                name: name.to_string(),
                arguments: args.to_string(),
            };
        }
    }
    match v.get("response").and_then(Value::as_str) {
        Some(r) => Parsed::Text(r.to_string()),
        None => Parsed::Text(text.to_string()),
    }
}

/// An assistant message's `tool_calls` as chat templates read them: arguments as a JSON
/// object (OpenAI sends a string). `None` if there are none or they are malformed.
pub fn calls_for_template(calls: &Value) -> Option<Value> {
    let arr = calls.as_array().filter(|a| !a.is_empty())?;
    let mut out = Vec::with_capacity(arr.len());
    for c in arr {
        let f = c.get("function")?;
        let name = f.get("name")?.as_str()?;
        let args: Value = match f.get("arguments") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
            Some(v) => v.clone(),
            None => json!({}),
        };
        let mut call = json!({"type": "function", "function": {"name": name, "arguments": args}});
        if let Some(id) = c.get("id") {
            call["id"] = id.clone();
        }
        out.push(call);
    }
    Some(Value::Array(out))
}

/// An assistant message's `tool_calls` written back as the JSON the model would have
/// produced (so a conversation with earlier calls renders the way the model answers).
pub fn calls_as_text(calls: &Value) -> Option<String> {
    let c = calls.as_array()?.first()?;
    let f = c.get("function")?;
    let name = f.get("name")?.as_str()?;
    let args: Value = match f.get("arguments") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
        None => json!({}),
    };
    Some(json!({"tool_call": {"name": name, "arguments": args}}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_calls_or_text() {
        assert_eq!(
            parse_answer(r#"{"tool_call": {"name": "f", "arguments": {"x": 1}}}"#),
            Parsed::Call {
                name: "f".into(),
                arguments: r#"{"x":1}"#.into()
            }
        );
        assert_eq!(
            parse_answer(r#"{"response": "hi \"there\""}"#),
            Parsed::Text("hi \"there\"".into())
        );
        assert_eq!(
            parse_answer(r#"{"tool_call": {"na"#),
            Parsed::Text(r#"{"tool_call": {"na"#.into())
        );
    }

    #[test]
    fn schemas_follow_the_choice() {
        let o: Map<String, Value> = serde_json::from_value(json!({
            "tools": [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "b"}}
        }))
        .unwrap();
        let spec = parse(&o).unwrap().unwrap();
        let s = spec.schema();
        assert_eq!(
            s["properties"]["tool_call"]["properties"]["name"]["const"],
            "b"
        );
        let auto = ToolSpec {
            choice: Choice::Auto,
            ..spec.clone()
        };
        assert_eq!(auto.schema()["anyOf"].as_array().unwrap().len(), 3);
        let req = ToolSpec {
            choice: Choice::Required,
            ..spec
        };
        assert_eq!(req.schema()["anyOf"].as_array().unwrap().len(), 2);
    }

    fn weather() -> ToolSpec {
        let o: Map<String, Value> = serde_json::from_value(json!({
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "get_time"}}
            ]
        }))
        .unwrap();
        parse(&o).unwrap().unwrap()
    }

    #[test]
    fn hermes_answers() {
        let spec = weather();
        let f = Format::Native(ToolFormat::Hermes);
        let call = |n: &str, a: &str| Call {
            name: n.into(),
            arguments: a.into(),
        };
        assert_eq!(
            spec.parse_answer(f, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"),
            (vec![call("get_weather", r#"{"city":"Paris"}"#)], None)
        );
        // Text around two parallel calls is content.
        assert_eq!(
            spec.parse_answer(f, "Let me check.\n<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"),
            (
                vec![call("get_time", "{}"), call("get_weather", r#"{"city":"Oslo"}"#)],
                Some("Let me check.".into())
            )
        );
        // Plain text; a block cut short; an undeclared tool: all content, whole.
        for text in [
            "It is sunny.",
            "<tool_call>{\"name\": \"get_weather\", \"argu",
            "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>",
        ] {
            assert_eq!(
                spec.parse_answer(f, text),
                (vec![], Some(text.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn llama3_json_answers() {
        let spec = weather();
        let f = Format::Native(ToolFormat::Llama3Json);
        let want = (
            vec![Call {
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            }],
            None,
        );
        for text in [
            r#"{"name": "get_weather", "parameters": {"city": "Paris"}}"#,
            r#"<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}"#,
            r#" {"name": "get_weather", "arguments": {"city": "Paris"}} "#,
        ] {
            assert_eq!(spec.parse_answer(f, text), want, "{text}");
        }
        for text in [
            "Paris is sunny.",
            r#"{"name": "nope", "parameters": {}}"#,
            r#"{"name": "get_weather", "parameters": "Paris"}"#,
        ] {
            assert_eq!(
                spec.parse_answer(f, text),
                (vec![], Some(text.into())),
                "{text}"
            );
        }
    }

    #[test]
    fn native_grammars_only_when_a_call_is_required() {
        let mut spec = weather();
        let hermes = Format::Native(ToolFormat::Hermes);
        let llama = Format::Native(ToolFormat::Llama3Json);
        assert_eq!(spec.grammar(hermes), None);
        assert_eq!(spec.grammar(llama), None);
        assert!(matches!(
            spec.grammar(Format::Generic),
            Some(Grammar::JsonSchema(_))
        ));
        spec.choice = Choice::Named("get_weather".into());
        let Some(Grammar::Lark(l)) = spec.grammar(hermes) else {
            panic!("hermes grammar")
        };
        assert!(
            l.starts_with("start: \"<tool_call>\\n\" call \"\\n</tool_call>\"\ncall: %json {"),
            "{l}"
        );
        assert!(
            l.contains(r#""name":{"const":"get_weather"}"#) && !l.contains("get_time"),
            "{l}"
        );
        let Some(Grammar::JsonSchema(j)) = spec.grammar(llama) else {
            panic!("llama grammar")
        };
        assert_eq!(j["properties"]["name"]["const"], "get_weather");
        assert_eq!(j["required"], json!(["name", "parameters"]));
        spec.choice = Choice::Required;
        let Some(Grammar::JsonSchema(j)) = spec.grammar(llama) else {
            panic!("llama grammar")
        };
        assert_eq!(j["anyOf"].as_array().unwrap().len(), 2);
    }
}
