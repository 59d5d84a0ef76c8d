#!/usr/bin/env bash
# Runs on the GPU machine (the `device` tool), from the repository root:
#   bash scripts/golden/run_on_device.sh
# Needs: .dev/bin/bitnet (an x86-64 release build, carried), .dev/shared/<case dir> copies of the
# ../shared model folders (carried). Writes $OUT/golden.tar with the fixtures and the log.
set -euo pipefail
OUT=${OUT:-/tmp/out}
M=/tmp/golden-models
R=/tmp/golden-ref
rm -rf "$M" "$R"; mkdir -p "$M" "$R"
python3 - <<'PY' > /tmp/synth-cmds.sh
import json
for c in json.load(open("scripts/golden/cases.json"))["cases"]:
    if "synth" in c:
        s = c["synth"]
        print(f'.dev/bin/bitnet synth --shape {s["shape"]} --format {s["format"]} --seed {s["seed"]} --out /tmp/golden-models/{c["dir"]}')
    else:
        print(f'[ -d .dev/shared/{c["dir"]} ] && cp -r .dev/shared/{c["dir"]} /tmp/golden-models/ || echo "no .dev/shared/{c["dir"]}"')
PY
if [ -x .dev/bin/bitnet ]; then bash -x /tmp/synth-cmds.sh; else grep -v '.dev/bin/bitnet' /tmp/synth-cmds.sh | bash -x; fi
ls -la "$M"
PYTHONUNBUFFERED=1 python3 scripts/golden/make_reference.py --cases scripts/golden/cases.json --models "$M" --out "$R" 2>&1 | tee "$R/log.txt"
tar -C "$R" -cf "$OUT/golden.tar" .
