//! Tool calling for any model, the way llama.cpp's generic handler does it: the tools are
//! described in a system message, the answer is constrained (llguidance) to one JSON object,
//! either `{"tool_call": {"name": ..., "arguments": {...}}}` or `{"response": "..."}`, and
//! that object is turned into OpenAI's `tool_calls` or plain content. Because the grammar
//! only admits the declared tools and their parameter schemas, the arguments always parse
//! and validate.

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
    /// The JSON schema the answer is constrained to.
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
}
