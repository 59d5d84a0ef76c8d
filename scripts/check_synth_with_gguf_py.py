#!/usr/bin/env python3
"""Cross-check `bitnet synth` output with independent tools (gguf-py + numpy only, no torch).

    pip install gguf numpy
    for f in gguf-i2s gguf-tq2 gguf-tq1; do bitnet synth --shape tiny --format $f --out DIR/$f.gguf; done
    bitnet synth --shape tiny --format hf-bf16 --out DIR/hf-bf16
    bitnet synth --shape tiny --format hf-packed --out DIR/hf-packed
    python3 scripts/check_synth_with_gguf_py.py DIR

Checks, per ternary matrix:
* the HF bf16 master, ternarized as transformers' WeightQuant does in float32
  (s = 1/max(mean|W|, 1e-5), t = clamp(round(w*s), -1, 1)), gives trits t;
* the HF packed weights, unpacked as transformers' `unpack_weights` does, give the same t, and
  `weight_scale` = bf16(1/mean|W|);
* gguf-py's own TQ2_0 / TQ1_0 dequantization of the GGUFs equals t * fp16(mean|W|);
* the I2_S bytes, decoded per bitnet.cpp's x86 layout (MANIFEST.md), equal t with scale mean|W|;
* token_embd (F16) equals the bf16 embedding; F32 norms equal the bf16 norms.
"""
import json
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[8 + n + b:8 + n + e], dtype=np.uint8)
        if info["dtype"] == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "U8":
            arr = raw
        else:
            raise SystemExit(f"unexpected dtype {info['dtype']}")
        out[name] = arr.reshape(info["shape"])
    return out


def weight_quant(w):
    w = w.astype(np.float32)
    s = np.float32(1.0) / max(np.float32(np.abs(w).astype(np.float64).mean()), np.float32(1e-5))
    t = np.clip(np.round(w * s), -1, 1).astype(np.int8)  # np.round: half to even, as torch
    return t, np.float32(np.abs(w).astype(np.float64).mean())


def unpack_weights(packed):
    rows = packed.shape[0]
    out = np.zeros((rows * 4, packed.shape[1]), dtype=np.int8)
    for i in range(4):
        out[i * rows:(i + 1) * rows] = ((packed >> (2 * i)) & 3).astype(np.int8)
    return out - 1


def bf16(x):
    u = np.array([x], dtype=np.float32).view(np.uint32)
    u = (u + (0x7FFF + ((u >> 16) & 1))) >> 16
    return (u.astype(np.uint32) << 16).view(np.float32)[0]


def decode_i2s(raw, n):
    codes = raw[:n // 4].reshape(-1, 32)
    t = np.zeros((codes.shape[0], 128), dtype=np.int8)
    for g in range(4):
        t[:, 32 * g:32 * g + 32] = ((codes >> (6 - 2 * g)) & 3).astype(np.int8) - 1
    scale = np.frombuffer(raw[n // 4:n // 4 + 4].tobytes(), dtype=np.float32)[0]
    return t.reshape(-1), scale


def read_i2s_gguf(path):
    """{name: (raw bytes, n)} of the I2_S tensors; gguf-py 0.19 does not know type 36, so this
    walks the GGUF v3 header itself (only the value types `bitnet synth` writes)."""
    b = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)
        pos += struct.calcsize(fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("<Q")
        pos += n
        return b[pos - n:pos].decode()

    assert b[:4] == b"GGUF" and struct.unpack_from("<I", b, 4)[0] == 3
    pos = 8
    n_t, n_kv = take("<Q"), take("<Q")
    for _ in range(n_kv):
        string()
        vt = take("<I")
        {4: lambda: take("<I"), 6: lambda: take("<f"), 8: string}[vt]()
    infos = []
    for _ in range(n_t):
        name = string()
        dims = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, dims, take("<I"), take("<Q")))
    start = (pos + 31) // 32 * 32
    out = {}
    for name, dims, ty, off in infos:
        if ty == 36:
            n = int(np.prod(dims))
            out[name] = (np.frombuffer(b[start + off:start + off + n // 4 + 32], dtype=np.uint8), n)
    return out


HF2GG = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
         "self_attn.attn_sub_norm": "attn_sub_norm", "post_attention_layernorm": "ffn_norm",
         "mlp.ffn_sub_norm": "ffn_sub_norm"}


def gguf_name(hf):
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{HF2GG[rest[:-len('.weight')]]}.weight"


def main(d):
    master = read_safetensors(f"{d}/hf-bf16/model.safetensors")
    packed = read_safetensors(f"{d}/hf-packed/model.safetensors")
    readers = {k: gguf.GGUFReader(f"{d}/gguf-{k}.gguf") for k in ["tq2", "tq1"]}
    tensors = {k: {t.name: t for t in r.tensors} for k, r in readers.items()}
    i2s = read_i2s_gguf(f"{d}/gguf-i2s.gguf")
    n_mats = 0
    for name, w in master.items():
        gg = gguf_name(name)
        if w.ndim == 2 and name != "model.embed_tokens.weight":
            t, mean = weight_quant(w)
            p = packed[name]
            assert (unpack_weights(p) == t).all(), f"{name}: packed trits differ"
            ws = packed[name + "_scale"]
            assert ws.shape == (1,) and ws[0] == bf16(np.float32(1.0) / mean), f"{name}: weight_scale"
            codes, scale = decode_i2s(*i2s[gg])
            assert np.array_equal(codes, t.reshape(-1)), f"{gg}: I2_S trits"
            assert scale == mean, f"{gg}: I2_S scale {scale} vs mean|W| {mean}"
            d16 = np.float32(np.float16(mean))
            for k, qt in [("tq2", T.TQ2_0), ("tq1", T.TQ1_0)]:
                ten = tensors[k][gg]
                assert ten.tensor_type == qt, f"{gg}: {ten.tensor_type}"
                vals = dequantize(np.array(ten.data), qt).reshape(-1)
                assert np.array_equal(vals, t.reshape(-1).astype(np.float32) * d16), f"{gg} {k}"
            n_mats += 1
        else:
            want = w.reshape(-1)
            for k in ["tq2", "tq1"]:
                ten = tensors[k][gg]
                vals = np.array(ten.data).astype(np.float32).reshape(-1)
                assert np.array_equal(vals, want), f"{gg} {k}"
    print(f"ok: {n_mats} ternary matrices; packed, I2_S, TQ2_0, TQ1_0 (gguf-py dequantize), norms "
          f"and embeddings agree with the bf16 master ternarized as transformers does")


if __name__ == "__main__":
    main(sys.argv[1])
