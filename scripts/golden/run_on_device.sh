#!/usr/bin/env bash
# Runs on the GPU machine (the `device` tool), from the repository root:
#   bash scripts/golden/run_on_device.sh                # every case
#   ONLY=long- MANIFEST=manifest-long.json bash scripts/golden/run_on_device.sh
# Needs (carried in .dev/): bin/bitnet (x86-64 release build, for `bitnet synth`), and for the
# cases that use them: shared/ (copies of the ../shared model folders named in cases.json:
# bitnetcpp-tiny with its GGUFs, tinystories-3m/1m), whl/gguf-*.whl (the gguf PyPI package, to
# decode GGUF tensors independently).
# Writes $OUT/golden.tar with the fixtures and the log.
set -euo pipefail
OUT=${OUT:-/tmp/out}
ONLY=${ONLY:-}
MANIFEST=${MANIFEST:-manifest.json}
M=/tmp/golden-models
R=${R:-/tmp/golden-ref}
rm -rf "$M" "$R"; mkdir -p "$M" "$R"
if compgen -G ".dev/whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .dev/whl/*.whl
    export PYTHONPATH=/tmp/site
fi
if [ -d .dev/shared ]; then cp -r .dev/shared/* "$M"/; fi
ONLY="$ONLY" python3 - <<'PY' > /tmp/synth-cmds.sh
import json, os
for c in json.load(open("scripts/golden/cases.json"))["cases"]:
    if "synth" in c and c["name"].startswith(os.environ["ONLY"]):
        s = c["synth"]
        print(f'.dev/bin/bitnet synth --shape {s["shape"]} --format {s["format"]} --seed {s["seed"]} --out /tmp/golden-models/{c["dir"]}')
PY
bash -x /tmp/synth-cmds.sh
ls -la "$M"
PYTHONUNBUFFERED=1 python3 scripts/golden/make_reference.py --cases scripts/golden/cases.json \
    --models "$M" --out "$R" --only "$ONLY" --manifest "$MANIFEST" 2>&1 | tee "$R/log.txt"
tar -C "$R" -cf "$OUT/golden.tar" .
