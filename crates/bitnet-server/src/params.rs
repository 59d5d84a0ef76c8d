//! Reading OpenAI request bodies field by field, so that every wrong type or out-of-range
//! value is answered with a 400 naming the parameter. Unknown fields are ignored, as OpenAI
//! does.

use std::collections::HashMap;

use bitnet_generate::SamplerConfig;
use serde_json::{Map, Value};

use crate::error::ApiError;

type Obj = Map<String, Value>;

pub fn parse_object(body: &[u8]) -> Result<Obj, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!("We could not parse the JSON body of your request: {e}"),
        )
    })?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(ApiError::invalid(
            None,
            "The request body must be a JSON object.",
        )),
    }
}

fn present<'a>(o: &'a Obj, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

pub fn f32_in(o: &Obj, k: &str, lo: f64, hi: f64) -> Result<Option<f32>, ApiError> {
    match present(o, k) {
        None => Ok(None),
        Some(v) => {
            let x = v
                .as_f64()
                .ok_or_else(|| ApiError::param(k, format!("expected a number, got {v}")))?;
            if !(lo..=hi).contains(&x) {
                return Err(ApiError::param(
                    k,
                    format!("{x} is not between {lo} and {hi}"),
                ));
            }
            Ok(Some(x as f32))
        }
    }
}

pub fn int_in(o: &Obj, k: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
    match present(o, k) {
        None => Ok(None),
        Some(v) => {
            let x = v
                .as_i64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| ApiError::param(k, format!("expected an integer, got {v}")))?;
            if !(lo..=hi).contains(&x) {
                return Err(ApiError::param(
                    k,
                    format!("{x} is not between {lo} and {hi}"),
                ));
            }
            Ok(Some(x))
        }
    }
}

pub fn u64_any(o: &Obj, k: &str) -> Result<Option<u64>, ApiError> {
    match present(o, k) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_i64().map(|x| x as u64))
            .map(Some)
            .ok_or_else(|| ApiError::param(k, format!("expected an integer, got {v}"))),
    }
}

pub fn boolean(o: &Obj, k: &str) -> Result<Option<bool>, ApiError> {
    match present(o, k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(ApiError::param(k, format!("expected a boolean, got {v}"))),
    }
}

pub fn string<'a>(o: &'a Obj, k: &str) -> Result<Option<&'a str>, ApiError> {
    match present(o, k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(ApiError::param(k, format!("expected a string, got {v}"))),
    }
}

/// `stop`: a string or an array of non-empty strings.
pub fn stop(o: &Obj) -> Result<Vec<String>, ApiError> {
    let list = match present(o, "stop") {
        None => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::param("stop", "expected strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(v) => {
            return Err(ApiError::param(
                "stop",
                format!("expected a string or an array, got {v}"),
            ))
        }
    };
    if list.iter().any(String::is_empty) {
        return Err(ApiError::param("stop", "stop strings must not be empty"));
    }
    if list.len() > 16 {
        return Err(ApiError::param("stop", "at most 16 stop strings"));
    }
    Ok(list)
}

/// `logit_bias`: `{"token id": bias in [-100, 100]}`.
pub fn logit_bias(o: &Obj, vocab: usize) -> Result<HashMap<u32, f32>, ApiError> {
    let mut out = HashMap::new();
    match present(o, "logit_bias") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let id: u32 = k
                    .parse()
                    .ok()
                    .filter(|&i: &u32| (i as usize) < vocab)
                    .ok_or_else(|| {
                        ApiError::param(
                            "logit_bias",
                            format!("'{k}' is not a token id below {vocab}"),
                        )
                    })?;
                let b = v
                    .as_f64()
                    .filter(|b| (-100.0..=100.0).contains(b))
                    .ok_or_else(|| {
                        ApiError::param(
                            "logit_bias",
                            format!("bias of {k} must be a number in [-100, 100], got {v}"),
                        )
                    })?;
                // OpenAI: -100 effectively bans the token.
                out.insert(
                    id,
                    if b <= -100.0 {
                        f32::NEG_INFINITY
                    } else {
                        b as f32
                    },
                );
            }
        }
        Some(v) => {
            return Err(ApiError::param(
                "logit_bias",
                format!("expected an object, got {v}"),
            ))
        }
    }
    Ok(out)
}

/// What every completion request shares.
#[derive(Debug, Clone)]
pub struct Common {
    pub model: Option<String>,
    pub sampling: SamplerConfig,
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
}

/// Parse the fields shared by chat and text completions. `default_max`: the endpoint's
/// default for `max_tokens`.
pub fn common(
    o: &Obj,
    vocab: usize,
    max_n: usize,
    default_max: Option<usize>,
) -> Result<Common, ApiError> {
    let model = string(o, "model")?.map(str::to_string);
    let mut sampling = SamplerConfig {
        // OpenAI's defaults: temperature 1, nucleus off; no top-k/min-p unless asked.
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..SamplerConfig::default()
    };
    if let Some(t) = f32_in(o, "temperature", 0.0, 2.0)? {
        sampling.temperature = t;
    }
    if let Some(p) = f32_in(o, "top_p", 0.0, 1.0)? {
        sampling.top_p = p;
    }
    if let Some(k) = int_in(o, "top_k", -1, i64::from(u32::MAX))? {
        sampling.top_k = k.max(0) as usize;
    }
    if let Some(p) = f32_in(o, "min_p", 0.0, 1.0)? {
        sampling.min_p = p;
    }
    if let Some(p) = f32_in(o, "presence_penalty", -2.0, 2.0)? {
        sampling.presence_penalty = p;
    }
    if let Some(p) = f32_in(o, "frequency_penalty", -2.0, 2.0)? {
        sampling.frequency_penalty = p;
    }
    if let Some(p) = f32_in(o, "repetition_penalty", 0.01, 10.0)? {
        sampling.repeat_penalty = p;
    }
    sampling.seed = u64_any(o, "seed")?;
    sampling.logit_bias = logit_bias(o, vocab)?;
    let max_a = int_in(o, "max_completion_tokens", 0, i64::MAX)?;
    let max_b = int_in(o, "max_tokens", 0, i64::MAX)?;
    let max_tokens = max_a.or(max_b).map(|x| x as usize).or(default_max);
    let n = int_in(o, "n", 1, max_n as i64)?.unwrap_or(1) as usize;
    let stream = boolean(o, "stream")?.unwrap_or(false);
    let include_usage = match present(o, "stream_options") {
        None => false,
        Some(Value::Object(so)) => boolean(so, "include_usage")
            .map_err(|_| ApiError::param("stream_options", "include_usage must be a boolean"))?
            .unwrap_or(false),
        Some(v) => {
            return Err(ApiError::param(
                "stream_options",
                format!("expected an object, got {v}"),
            ))
        }
    };
    let ignore_eos = boolean(o, "ignore_eos")?.unwrap_or(false);
    string(o, "user")?;
    Ok(Common {
        model,
        sampling,
        max_tokens,
        stop: stop(o)?,
        n,
        stream,
        include_usage,
        ignore_eos,
    })
}

/// Text of a message's `content`: a string, or an array of `{"type": "text", "text"}` parts.
pub fn content_text(v: Option<&Value>, i: usize) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut s = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => s.push_str(t),
                    _ => {
                        return Err(ApiError::invalid(
                            Some(param),
                            "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported",
                        ))
                    }
                }
            }
            Ok(s)
        }
        Some(v) => Err(ApiError::invalid(
            Some(param.clone()),
            format!("'{param}': expected a string or an array, got {v}"),
        )),
    }
}
