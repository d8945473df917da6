#!/usr/bin/env bash
# Check llem's measurement core on an NVIDIA machine, in under 5 minutes:
#   1. llem doctor            what NVML/RAPL can measure here
#   2. environment            EnvironmentMetadata summary
#   3. a 60 s idle baseline   with a CUDA context alive
#   4. a 30 s matmul load     in a measured window: counter energy against integrated polled
#                             power, throttle info, baseline-adjusted energy
#
# Usage: scripts/gpu-check.sh [WHEEL_DIR]
#   WHEEL_DIR (or $LLEM_WHEELS): a folder of wheels to install llem's missing dependencies
#   from, offline (pip --no-index). torch and nvidia-ml-py must already be installed; this
#   script never installs torch.
# Environment: PYTHON (default python3), GPU_CHECK_DEVICE (CUDA index, default 0),
#   GPU_CHECK_OUT (output folder, default a new temporary folder),
#   GPU_CHECK_BASELINE_SEC (default 60), GPU_CHECK_LOAD_SEC (default 30).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${PYTHON:-python3}"
WHEELS="${1:-${LLEM_WHEELS:-}}"
OUT="${GPU_CHECK_OUT:-$(mktemp -d -t llem-gpu-check.XXXXXX)}"
DEVICE="${GPU_CHECK_DEVICE:-0}"
BASELINE_SEC="${GPU_CHECK_BASELINE_SEC:-60}"
LOAD_SEC="${GPU_CHECK_LOAD_SEC:-30}"
mkdir -p "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export LLEM_CACHE_DIR="$OUT/cache"

section() { printf '\n=== %s ===\n' "$*"; }

section "python and dependencies"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "gpu-check: $PY not found; set PYTHON" >&2
    exit 2
fi
"$PY" --version
# module -> pip name of what the measurement core imports
missing="$("$PY" - <<'PYEOF'
import importlib.util
need = {"pydantic": "pydantic", "yaml": "pyyaml", "pyarrow": "pyarrow"}
print(" ".join(pip for mod, pip in need.items() if importlib.util.find_spec(mod) is None))
PYEOF
)"
for mod in torch pynvml; do
    if ! "$PY" -c "import $mod" >/dev/null 2>&1; then
        echo "gpu-check: python module '$mod' is missing (install torch / nvidia-ml-py first)" >&2
        exit 2
    fi
done
if [ -n "$missing" ]; then
    if [ -z "$WHEELS" ] || [ ! -d "$WHEELS" ]; then
        echo "gpu-check: missing: $missing; pass a wheel folder (argument or LLEM_WHEELS)" >&2
        exit 2
    fi
    echo "installing from $WHEELS: $missing"
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" $missing
fi
"$PY" -c "import torch, pynvml; print('torch', torch.__version__, '| cuda available:', torch.cuda.is_available())"

section "llem doctor"
if ! timeout 120 "$PY" -m llem doctor; then
    echo "(the full CLI did not start; probing directly)"
    timeout 120 "$PY" -c "from llem.energy.probe import probe, format_report; print(format_report(probe()))"
fi

section "baseline ${BASELINE_SEC}s, then ${LOAD_SEC}s matmul load in a measured window"
timeout $((BASELINE_SEC + LOAD_SEC + 150)) "$PY" - "$OUT" "$DEVICE" "$BASELINE_SEC" "$LOAD_SEC" <<'PYEOF'
import json
import sys
import time
from pathlib import Path

import torch

from llem.config.models import BaselineConfig, EnergyConfig
from llem.energy.select import open_energy_source
from llem.io import write_json_atomic
from llem.measure.baseline import baseline_summary, energy_breakdown, measure_baseline
from llem.measure.environment import collect_environment
from llem.measure.throttle import reason_names
from llem.measure.timeseries import write_timeseries
from llem.measure.window import MeasurementWindow

out, device, baseline_sec, load_sec = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
env = collect_environment([device])
write_json_atomic(out / "environment.json", env.model_dump(mode="json"))
print("environment:", env.summary_line)
print("  GPUs:", [(g.index, g.name, g.uuid, "persistence", g.persistence_mode) for g in env.gpus or []])
print("  unavailable:", env.unavailable)
if not torch.cuda.is_available():
    sys.exit("gpu-check: torch sees no CUDA device")

sel = open_energy_source(EnergyConfig(), [device])
print("energy source:", sel.name, "| devices:", sel.device_ids, "| reason:", sel.unavailable_reason)
for w in sel.warnings:
    print("  warning:", w)

t = time.monotonic()
base = measure_baseline(BaselineConfig(duration_sec=min(120.0, max(5.0, baseline_sec))), sel,
                        cuda_device_indices=[device], cache_dir=out / "cache", use_cache=False)
write_json_atomic(out / "baseline.json", base.model_dump(mode="json"))
print(f"{baseline_summary(base)} [{time.monotonic() - t:.0f} s, {base.sample_count} ticks, "
      f"cuda_context={base.cuda_context}]")

a = torch.randn(8192, 8192, device=f"cuda:{device}", dtype=torch.float16)
for _ in range(5):  # warm up: kernels, clocks
    b = a @ a
torch.cuda.synchronize(device)
window = MeasurementWindow(sel, sample_interval_ms=100, keep_samples=True, min_window_sec=10.0,
                           sync=lambda: torch.cuda.synchronize(device))
window.begin()
steps = 0
end = time.monotonic() + load_sec
while time.monotonic() < end:
    b = a @ a
    steps += 1
    if steps % 20 == 0:
        torch.cuda.synchronize(device)
res = window.end()
sel.close()

tflops = 2 * 8192**3 * steps / res.duration_sec / 1e12
print(f"window: {res.duration_sec:.3f} s, {steps} matmuls ({tflops:.0f} TFLOP/s fp16), "
      f"{res.sample_count} sampler ticks (expected ~{res.duration_sec / 0.1:.0f})")
for d in res.device_energy:
    print(f"  {d.device_id}: {d.energy_j} J via {d.source}  {d.unavailable_reason or ''}")
print(f"total: {res.total_energy_j} J ({res.energy_source}); mean power "
      f"{(res.total_energy_j or 0) / max(res.duration_sec, 1e-9):.1f} W")
# polled power integrated over the same window, per device, against the counter
for dw in res.device_windows:
    pts = sorted((s.timestamp_sec, s.power_w) for s in res.samples
                 if s.device_id == dw.device_id and s.power_w is not None
                 and res.start_monotonic <= s.timestamp_sec <= res.end_monotonic)
    integ = sum(0.5 * (p0 + p1) * (t1 - t0) for (t0, p0), (t1, p1) in zip(pts, pts[1:]))
    span = pts[-1][0] - pts[0][0] if len(pts) > 1 else 0.0
    counter = None
    if dw.end_energy_j is not None and span > 0:
        counter = res.energy_between(pts[0][0], pts[-1][0])
    ratio = f"{integ / counter:.4f}" if counter else "n/a"
    print(f"  {dw.device_id}: polled power integrated {integ:.1f} J over {span:.2f} s vs counter "
          f"{counter if counter is None else round(counter, 1)} J over the same span "
          f"(ratio {ratio})")
half = res.start_monotonic + res.duration_sec / 2
e1, e2 = res.energy_between(res.start_monotonic, half), res.energy_between(half, res.end_monotonic)
print(f"energy_between halves: {e1} + {e2} = {None if e1 is None or e2 is None else e1 + e2} "
      f"(total {res.total_energy_j})")
print("throttle:", None if res.throttle is None else res.throttle.model_dump(exclude={"throttle_timestamps"}))
bits = 0
for s in res.samples:
    bits |= s.clock_event_reasons or 0
print("clock-event reasons seen:", reason_names(bits) or "none")
print("breakdown:", energy_breakdown(res, base))
print("warnings:", res.warnings)
write_timeseries(res, out / "timeseries" / "process_0.parquet", rank=0)
print("files in", out)
PYEOF

section "environment summary"
timeout 120 "$PY" - "$OUT/environment.json" <<'PYEOF'
import json
import sys

from llem.domain.environment import EnvironmentMetadata

with open(sys.argv[1], encoding="utf-8") as handle:
    print(EnvironmentMetadata.model_validate(json.load(handle)).summary_line)
PYEOF
echo "gpu-check: done; files in $OUT"
