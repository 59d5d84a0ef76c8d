"""The official `openai` Python client against a running `bitnet serve` (TinyStories 3M).

Usage: python openai_client_test.py BASE_URL API_KEY EXPECTED_GREEDY_TEXT
Run by crates/bitnet-cli/tests/serve.rs, which starts the server and passes the text that
`bitnet run --temp 0 -n 24 -p "Once upon a time"` printed. Prints one line per check and
a final 'N passed, 0 failed' line; exits non-zero on the first failure.
"""

import sys

import openai

base, key, expected = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base, api_key=key)
MODEL = "tinystories"
passed = 0


def check(name, cond, detail=""):
    global passed
    if not cond:
        print(f"FAILED {name}: {detail}")
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok {name}")


models = client.models.list()
check("models.list", [m.id for m in models.data] == [MODEL], models)

# Text completion, greedy: the same text as `bitnet run --temp 0`.
r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=24, temperature=0)
check("completions greedy == bitnet run", r.choices[0].text == expected, repr(r.choices[0].text))
check("completions usage", r.usage.prompt_tokens == 5 and r.usage.completion_tokens == 24, r.usage)
check("completions finish_reason", r.choices[0].finish_reason == "length", r.choices[0])

# Streaming text completion.
text = "".join(c.choices[0].text for c in client.completions.create(
    model=MODEL, prompt="Once upon a time", max_tokens=24, temperature=0, stream=True) if c.choices)
check("completions stream == non-stream", text == expected, repr(text))

# Several prompts in one request: one choice per prompt, in order.
r = client.completions.create(model=MODEL, prompt=["Once upon a time", "Once upon a time"], max_tokens=24,
                              temperature=0)
check("completions prompt batch", [c.index for c in r.choices] == [0, 1]
      and all(c.text == expected for c in r.choices), r.choices)

# Chat, not streaming and streaming (a base model: messages are joined as text).
msgs = [{"role": "user", "content": "Once upon a time"}]
r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=24, temperature=0)
check("chat greedy", r.choices[0].message.content == expected, repr(r.choices[0].message.content))
check("chat role", r.choices[0].message.role == "assistant")
chunks = list(client.chat.completions.create(
    model=MODEL, messages=msgs, max_tokens=24, temperature=0, stream=True,
    stream_options={"include_usage": True}))
streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("chat stream == non-stream", streamed == expected, repr(streamed))
check("chat stream finish", [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length")
check("chat stream usage", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 24,
      chunks[-1])

# n = 2 with a seed: two choices, repeatable.
a = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16, n=2, seed=3, temperature=1.0)
b = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=16, n=2, seed=3, temperature=1.0)
check("n=2", len(a.choices) == 2 and sorted(c.index for c in a.choices) == [0, 1])
check("seeded n=2 repeats", [c.message.content for c in a.choices] == [c.message.content for c in b.choices])

# Stop sequence and logprobs.
r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=40, temperature=0, stop=["Lily"])
check("stop", r.choices[0].text == ", there was a little girl named " and r.choices[0].finish_reason == "stop",
      repr(r.choices[0].text))
r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4, temperature=0, logprobs=True,
                                   top_logprobs=2)
lp = r.choices[0].logprobs.content
check("logprobs", len(lp) == 4 and len(lp[0].top_logprobs) == 2 and lp[0].logprob <= 0, lp)

# Structured output: a JSON schema, the answer parses and validates.
import json
schema = {"type": "object", "properties": {"hero": {"type": "string", "maxLength": 10},
          "age": {"type": "integer", "minimum": 1, "maximum": 9}},
          "required": ["hero", "age"], "additionalProperties": False}
r = client.chat.completions.create(
    model=MODEL, messages=msgs, max_tokens=60, temperature=0.9, seed=4,
    response_format={"type": "json_schema", "json_schema": {"name": "story", "schema": schema, "strict": True}})
obj = json.loads(r.choices[0].message.content)
check("json_schema output validates",
      set(obj) == {"hero", "age"} and isinstance(obj["hero"], str) and len(obj["hero"]) <= 10
      and isinstance(obj["age"], int) and 1 <= obj["age"] <= 9, r.choices[0].message.content)
r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=40, temperature=0,
                                   response_format={"type": "json_object"})
check("json_object output parses", isinstance(json.loads(r.choices[0].message.content), dict),
      r.choices[0].message.content)

# Tool calls: a forced call whose arguments parse and validate; the result sent back.
tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"], "additionalProperties": False}}}]
ask = [{"role": "user", "content": "What is the weather in Paris?"}]
r = client.chat.completions.create(model=MODEL, messages=ask, tools=tools, max_tokens=60, temperature=0,
                                   tool_choice={"type": "function", "function": {"name": "get_weather"}})
call = r.choices[0].message.tool_calls[0]
args = json.loads(call.function.arguments)
check("tool call", r.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
      and set(args) == {"city"} and len(args["city"]) <= 12, r.choices[0])
r = client.chat.completions.create(model=MODEL, tools=tools, max_tokens=30, temperature=0, messages=ask + [
    {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
stream = list(client.chat.completions.create(
    model=MODEL, messages=ask, tools=tools, max_tokens=60, temperature=0, stream=True,
    tool_choice={"type": "function", "function": {"name": "get_weather"}}))
deltas = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
check("tool call streamed", len(deltas) == 1 and deltas[0][0].function.name == "get_weather"
      and deltas[0][0].function.arguments == call.function.arguments
      and [c.choices[0].finish_reason for c in stream if c.choices][-1] == "tool_calls", stream)
check("tool result accepted", r.choices[0].finish_reason in ("stop", "length", "tool_calls"), r.choices[0])

# Errors surface as the client's typed exceptions.
try:
    client.completions.create(model="gpt-4", prompt="x", max_tokens=1)
    check("unknown model is an error", False)
except openai.NotFoundError as e:
    check("unknown model -> NotFoundError", e.status_code == 404)
try:
    client.completions.create(model=MODEL, prompt="x", max_tokens=1, temperature=7)
    check("bad temperature is an error", False)
except openai.BadRequestError as e:
    check("bad temperature -> BadRequestError", "temperature" in str(e))
try:
    openai.OpenAI(base_url=base, api_key="wrong").models.list()
    check("wrong key is an error", False)
except openai.AuthenticationError:
    check("wrong key -> AuthenticationError", True)

print(f"{passed} passed, 0 failed")
