#!/usr/bin/env python3
"""Reference logits and greedy continuations from Hugging Face transformers.

Run on a machine with torch + transformers (>= 5 with BitNet support), e.g. the lent GPU box:

    python3 scripts/golden/make_reference.py --cases scripts/golden/cases.json \
        --models MODELS_DIR --out OUT_DIR

MODELS_DIR holds one sub-folder per case (`case["dir"]`): checkpoints written by
`bitnet synth` plus copies of ../shared/data model folders. For every case and prompt it writes
`OUT_DIR/<case>.p<i>.npy` (float32 [positions, vocab] logits of one forward pass; with the case's
`columns` = k > 1 only every k-th vocabulary column, plus `<case>.p<i>.argmax.npy`, the full
rows' argmax; with `probes` = k, `<case>.p<i>.probes.npy`, k evenly spaced values of six
points of each decoder layer (see `logits_of`), [positions, layers, 6k]) and
`OUT_DIR/<case>.greedy.json` (generate(do_sample=False) ids; with probes also
`<case>.greedy.{logits,argmax,probes}.npy`, one pass over the prompt and the continuation, for a
tie-proof check of every step), plus `OUT_DIR/manifest.json`
(versions, device, and the CPU-vs-GPU relative difference as a sanity figure).

Loading follows issue 2 item 8:
* `packed` / `llama`: `AutoModelForCausalLM.from_pretrained(dir, dtype=torch.float32)`; the
  checkpoint's own quantization_config selects transformers' BitLinear / AutoBitLinear.
* `gguf`: the model skeleton (config) comes from `case["config_dir"]`; EVERY tensor comes from the
  GGUF file `case["gguf"]`, decoded independently of BitNet-Rust: TQ1_0/TQ2_0/F16/F32 by the
  `gguf` PyPI package's own dequantizers, I2_S by the numpy decoder below (bitnet.cpp's x86
  layout, see shared/data/bitnetcpp/tiny/MANIFEST.md). Ternary matrices hold exactly the file's
  t·scale and are routed through transformers' `ActQuant` only: the reference for "the numbers the
  file carries" (TQ files round scales to fp16, so they are not the bf16 master's numbers).
* `master`: bf16/f32 master weights with no quantization_config are loaded as a plain float
  model, and every nn.Linear but `lm_head` is routed through transformers' own `WeightQuant`
  and `ActQuant` (what AutoBitLinear does in online mode).
Reference logits are computed in float32 on the CPU with TF32 off; the GPU run is only compared.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # integrations/bitnet.py decorates with torch.compile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers
from transformers import AutoModelForCausalLM
from transformers.integrations.bitnet import ActQuant, WeightQuant

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")


class OnlineBitLinear(nn.Module):
    """nn.Linear with transformers' online ternary weight + int8 activation fake-quantization."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.weight = lin.weight
        self.bias = lin.bias

    def forward(self, x):
        return F.linear(ActQuant.apply(x), WeightQuant.apply(self.weight), self.bias)


def route_master(model):
    n = 0
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.Linear) and not full.endswith("lm_head"):
                setattr(mod, child_name, OnlineBitLinear(child))
                n += 1
    if n == 0:
        sys.exit("no nn.Linear found to route through WeightQuant/ActQuant")
    return n


class ActQuantLinear(nn.Module):
    """A Linear whose weights already are t·scale: only the activations are fake-quantized."""

    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)

    def forward(self, x):
        return F.linear(ActQuant.apply(x), self.weight)


def decode_i2s(raw, n):
    """bitnet.cpp I2_S (x86 ACT_PARALLEL): n/4 code bytes in 128-element blocks of 32 bytes,
    byte p of block b holds elements 128b + 32g + p in bits (6 - 2g); then an f32 scale."""
    codes = np.frombuffer(raw[: n // 4], dtype=np.uint8).reshape(-1, 32)
    scale = np.frombuffer(raw[n // 4 : n // 4 + 4], dtype=np.float32)[0]
    out = np.empty((codes.shape[0], 4, 32), dtype=np.int8)
    for g in range(4):
        out[:, g, :] = (codes >> (6 - 2 * g)) & 3
    t = out.reshape(-1).astype(np.float32) - 1.0
    assert not (out == 3).any(), "I2_S code 3"
    return t * scale


GGUF_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_sub_norm": "self_attn.attn_sub_norm", "ffn_sub_norm": "mlp.ffn_sub_norm",
}




def parse_gguf(path):
    """Minimal GGUF v3 header parser (independent of BitNet-Rust and of gguf-py's type table)."""
    import struct

    b = open(path, "rb").read()
    pos = 0

    def rd(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def rstr():
        nonlocal pos
        n = rd("Q")
        s = b[pos : pos + n].decode()
        pos += n
        return s

    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def rval(t):
        if t in sizes:
            return rd(sizes[t])
        if t == 8:
            return rstr()
        if t == 9:
            et = rd("I")
            n = rd("Q")
            return [rval(et) for _ in range(n)]
        raise ValueError(t)

    assert b[:4] == b"GGUF"
    pos = 4
    rd("I")
    nt = rd("Q")
    nkv = rd("Q")
    meta = {}
    for _ in range(nkv):
        k = rstr()
        meta[k] = rval(rd("I"))
    infos = []
    for _ in range(nt):
        name = rstr()
        nd = rd("I")
        dims = [rd("Q") for _ in range(nd)]
        infos.append((name, dims, rd("I"), rd("Q")))
    align = meta.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    return b, meta, infos, data


def gguf_weights(path):
    import gguf
    from gguf.quants import dequantize

    b, meta, infos, data = parse_gguf(path)
    sizes = {}
    for t in gguf.GGMLQuantizationType:
        bs, ts = gguf.GGML_QUANT_SIZES[t]
        sizes[t.value] = (bs, ts)
    out = {}
    for name, dims, ty, off in infos:
        n = int(np.prod(dims))
        start = data + off
        if ty == 36:
            arr = decode_i2s(b[start : start + n // 4 + 4], n)
        else:
            bs, ts = sizes[ty]
            raw = np.frombuffer(b[start : start + n // bs * ts], dtype=np.uint8)
            qt = gguf.GGMLQuantizationType(ty)
            if qt == gguf.GGMLQuantizationType.F32:
                arr = raw.view(np.float32).copy()
            elif qt == gguf.GGMLQuantizationType.F16:
                arr = raw.view(np.float16).astype(np.float32)
            else:
                arr = dequantize(raw.reshape(-1, ts), qt).astype(np.float32).reshape(-1)
        out[name] = arr.reshape(list(reversed(dims)))
    return out


def install_gguf(model, path):
    w = gguf_weights(path)
    sd = {}
    for name, arr in w.items():
        parts = name.split(".")
        if parts[0] == "blk":
            hf = f"model.layers.{parts[1]}.{GGUF_NAMES[parts[2]]}.weight"
        elif name == "token_embd.weight":
            hf = "model.embed_tokens.weight"
        elif name == "output_norm.weight":
            hf = "model.norm.weight"
        elif name == "output.weight":
            hf = "lm_head.weight"
        else:
            sys.exit(f"unexpected GGUF tensor {name}")
        sd[hf] = torch.from_numpy(np.ascontiguousarray(arr))
    n = 0
    for mname, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            full = f"{mname}.{cname}" if mname else cname
            if isinstance(child, nn.Linear) and not full.endswith("lm_head"):
                setattr(mod, cname, ActQuantLinear(sd.pop(full + ".weight")))
                n += 1
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight") and ".weight" in k and "proj" not in k]
    if missing or unexpected:
        sys.exit(f"GGUF load mismatch: missing {missing} unexpected {unexpected}")
    if model.config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    return n


def load(case, models_dir, device):
    if case["kind"] == "gguf":
        path = os.path.join(models_dir, case["config_dir"])
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        install_gguf(model, os.path.join(models_dir, case["dir"]))
        model.to(device).eval()
        return model
    path = os.path.join(models_dir, case["dir"])
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if case["kind"] == "master":
        route_master(model)
    model.to(device).eval()
    return model


@torch.no_grad()
def logits_of(model, ids, device, probe_count=0):
    """Logits [n, vocab]; with probe_count > 0 also probes of six points of every decoder
    layer, in forward order: the inputs of q_proj, k_proj's and v_proj's outputs (keys and
    values before RoPE), the inputs of o_proj, gate_proj and down_proj (each before its
    activation quantization); probe_count evenly spaced values (element i * (width //
    probe_count)) of each: [n, layers, 6 * probe_count]."""
    x = torch.tensor([ids], dtype=torch.long, device=device)
    grabbed, handles = {}, []

    def keep(key, h):
        step = max(h.shape[-1] // probe_count, 1)
        grabbed[key] = h[0, :, ::step][:, :probe_count].float().cpu().numpy()

    def pre(key):
        return lambda _mod, args: keep(key, args[0])

    def post(key):
        return lambda _mod, _inp, out: keep(key, out[0] if isinstance(out, tuple) else out)

    layers = model.model.layers
    if probe_count:
        for i, layer in enumerate(layers):
            att, mlp = layer.self_attn, layer.mlp
            handles += [
                att.q_proj.register_forward_pre_hook(pre((i, 0))),
                att.k_proj.register_forward_hook(post((i, 1))),
                att.v_proj.register_forward_hook(post((i, 2))),
                att.o_proj.register_forward_pre_hook(pre((i, 3))),
                mlp.gate_proj.register_forward_pre_hook(pre((i, 4))),
                mlp.down_proj.register_forward_pre_hook(pre((i, 5))),
            ]
    try:
        logits = model(input_ids=x).logits[0].float().cpu().numpy()
    finally:
        for h in handles:
            h.remove()
    if probe_count:
        per_layer = [np.concatenate([grabbed[(i, j)] for j in range(6)], axis=-1) for i in range(len(layers))]
        return logits, np.stack(per_layer, axis=1)
    return logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="", help="only the cases whose name starts with this")
    ap.add_argument("--manifest", default="manifest.json", help="name of the manifest written")
    args = ap.parse_args()
    cases = [c for c in json.load(open(args.cases))["cases"] if c["name"].startswith(args.only)]
    os.makedirs(args.out, exist_ok=True)
    manifest = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "reference_device": "cpu",
        "tf32": False,
        "cases": {},
    }
    for case in cases:
        name = case["name"]
        if not os.path.exists(os.path.join(args.models, case["dir"])):
            print(f"== {name}: SKIPPED, {case['dir']} not in {args.models}", flush=True)
            continue
        print(f"== {name}", flush=True)
        cpu = load(case, args.models, "cpu")
        gpu = load(case, args.models, "cuda") if torch.cuda.is_available() else None
        info = {"dir": case["dir"], "kind": case["kind"], "prompts": []}
        stride = case.get("columns", 1)
        probe = case.get("probes", 0)
        greedy = case.get("greedy")
        for i, ids in enumerate(case["prompts"]):
            if probe and greedy and greedy["prompt"] == i:
                # Its positions are the first of the greedy sequence's (below): checked there.
                info["prompts"].append({"ids": ids, "covered_by": "greedy"})
                print(f"   p{i}: covered by the greedy sequence", flush=True)
                continue
            ref = logits_of(cpu, ids, "cpu", probe)
            if probe:
                ref, probes = ref
                np.save(os.path.join(args.out, f"{name}.p{i}.probes.npy"), probes.astype(np.float32))
            # Every `stride`-th column (all of them by default), and the full row's argmax.
            np.save(os.path.join(args.out, f"{name}.p{i}.npy"), ref[:, ::stride].astype(np.float32))
            if stride > 1:
                np.save(os.path.join(args.out, f"{name}.p{i}.argmax.npy"), ref.argmax(-1).astype(np.int64))
            entry = {"ids": ids, "shape": list(ref.shape), "columns": stride}
            if gpu is not None:
                g = logits_of(gpu, ids, "cuda")
                entry["gpu_rel_l2"] = float(np.linalg.norm(g - ref) / np.linalg.norm(ref))
                entry["gpu_argmax_agree"] = float((g.argmax(-1) == ref.argmax(-1)).mean())
            info["prompts"].append(entry)
            print(f"   p{i}: {entry}", flush=True)
        g = greedy
        if g:
            ids = case["prompts"][g["prompt"]]
            x = torch.tensor([ids], dtype=torch.long)
            # With `eos_token_id` the continuation may stop there (the EOS is its last id);
            # without, EOS is ignored (min_new_tokens) and all max_new_tokens ids are produced.
            eos = g.get("eos_token_id")
            stop = {"eos_token_id": eos} if eos is not None else {"min_new_tokens": g["max_new_tokens"]}
            out = cpu.generate(
                input_ids=x,
                attention_mask=torch.ones_like(x),
                do_sample=False,
                max_new_tokens=g["max_new_tokens"],
                pad_token_id=0,
                **stop,
            )
            new = out[0, len(ids):].tolist()
            rec = {"prompt": ids, "new_ids": new}
            if eos is not None:
                rec["eos_token_id"] = eos
            if probe:
                # One forward pass over the prompt and the continuation but its last id: the
                # logits (and probes) of every position whose argmax chose a continuation id,
                # for the tie-proof comparison of the greedy run.
                seq = ids + new[:-1]
                ref, probes = logits_of(cpu, seq, "cpu", probe)
                np.save(os.path.join(args.out, f"{name}.greedy.logits.npy"), ref[:, ::stride].astype(np.float32))
                np.save(os.path.join(args.out, f"{name}.greedy.argmax.npy"), ref.argmax(-1).astype(np.int64))
                np.save(os.path.join(args.out, f"{name}.greedy.probes.npy"), probes.astype(np.float32))
                rec["sequence"] = seq
                rec["sequence_argmax_agrees"] = bool((ref.argmax(-1)[len(ids) - 1:] == np.array(new)).all())
            json.dump(rec, open(os.path.join(args.out, f"{name}.greedy.json"), "w"))
            print(f"   greedy: {new}", flush=True)
        manifest["cases"][name] = info
        del cpu, gpu
    json.dump(manifest, open(os.path.join(args.out, args.manifest), "w"), indent=1)


if __name__ == "__main__":
    main()
