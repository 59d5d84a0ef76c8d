#!/usr/bin/env python3
"""Write crates/bitnet-quants/tests/fixtures/gguf-py-ref.gguf: an independent reference for
bitnet-quants, made with the `gguf` PyPI package (llama.cpp's gguf-py; tested with 0.19.0,
numpy 2.4.6).  `pip install gguf numpy`, then `python3 scripts/make_quant_fixtures.py`.

Tensors (GGUF dims [256, rows]); each `X.ref` is gguf-py's own dequantization of `X`:
  src               F32    a deterministic array with edge values (zeros, ties, large, tiny)
  f16, bf16         F16/BF16 of src, converted by numpy / gguf-py
  q8_0, tq1_0, tq2_0  gguf-py's quantize(src) (TQ blocks of arbitrary data: per-block d differ)
  q6_k              random bytes with a sane fp16 d per block (gguf-py cannot quantize Q6_K,
                    but dequantizes it; any bytes are a valid Q6_K block)
  tern.src          F32 ternary data t*scale (one scale, row 1 all zero)
  tern.tq1_0, tern.tq2_0  gguf-py's quantize(tern.src): what encode_tq1_0/encode_tq2_0 must write
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "bitnet-quants", "tests",
                   "fixtures", "gguf-py-ref.gguf")

rng = np.random.default_rng(20261122)
rows, cols = 4, 256
src = rng.standard_normal((rows, cols)).astype(np.float32)
src[0, :8] = [0.0, -0.0, 1.0, -1.0, 65504.0, 1e-8, 3.0e-5, -7.5]
# bf16 / f16 rounding ties: exactly halfway between two representable values.
src[0, 8] = np.float32(1.0 + 2.0 ** -8)            # bf16 tie, rounds to even (1.0)
src[0, 9] = np.float32(1.0 + 3 * 2.0 ** -8)        # bf16 tie, rounds up to even
src[0, 10] = np.float32(1.0 + 2.0 ** -11)          # f16 tie
src[0, 11] = np.float32(1.0 + 3 * 2.0 ** -11)      # f16 tie
src[1] *= 100.0
src[2, :32] = 0.0                                   # an all-zero Q8_0 block

q6 = rng.integers(0, 256, size=(rows, 210), dtype=np.uint8)
d = (rng.random(rows).astype(np.float32) * 0.01 + 0.001).astype(np.float16).view(np.uint8)
q6[:, 208:210] = d.reshape(rows, 2)

scale = np.float32(0.0342706)
trits = rng.choice(np.array([-1, 0, 0, 1], dtype=np.int8), size=(rows, cols))
trits[1] = 0
tern = trits.astype(np.float32) * scale

w = gguf.GGUFWriter(OUT, "quants-ref")
w.add_string("general.name", "bitnet-quants gguf-py reference")
w.add_string("ref.generator", f"gguf {getattr(gguf, '__version__', '0.19.0')}, numpy {np.__version__}")


def add(name, arr, qtype):
    w.add_tensor(name, arr, raw_dtype=qtype)


add("src", src, T.F32)
add("f16", src.astype(np.float16), T.F16)
add("f16.ref", src.astype(np.float16).astype(np.float32), T.F32)
for name, qt in [("bf16", T.BF16), ("q8_0", T.Q8_0), ("tq1_0", T.TQ1_0), ("tq2_0", T.TQ2_0)]:
    q = quantize(src, qt)
    add(name, q, qt)
    add(name + ".ref", dequantize(q, qt).astype(np.float32), T.F32)
add("q6_k", q6, T.Q6_K)
add("q6_k.ref", dequantize(q6, T.Q6_K).astype(np.float32), T.F32)
add("tern.src", tern, T.F32)
for name, qt in [("tern.tq1_0", T.TQ1_0), ("tern.tq2_0", T.TQ2_0)]:
    add(name, quantize(tern, qt), qt)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")
