#!/usr/bin/env bash
# Build the Linux desktop bundle of voicebot, pack it, and smoke-test it.
#
#   bash packaging/build_linux.sh            the "cpu" variant (default)
#   VOICEBOT_BUNDLE_VARIANT=cuda bash packaging/build_linux.sh
#
# Needs the project's virtual environment (bash packaging/bootstrap.sh sets it up);
# PyInstaller is installed into it from the `build` extra when missing.
# Steps:
#   1. PyInstaller, one-folder build: packaging/pyinstaller/voicebot.spec
#   2. stage: the bundle + share/applications/voicebot.desktop + hicolor icons + install.sh
#   3. tarball: voicebot-VERSION-linux-ARCH-VARIANT.tar.zst (gzip when zstd is missing).
#      No AppImage: appimagetool is neither a Debian package nor on PyPI.
#   4. the frozen app's `--self-test`, offscreen; the script fails when it fails.
# Output goes to $VOICEBOT_BUILD_DIR (default packaging/build, git-ignored):
#   dist-VARIANT/voicebot/        the bundle as PyInstaller made it
#   stage-VARIANT/NAME/           what the tarball holds
#   NAME.tar.zst                  the tarball
#   selftest-VARIANT.json         the frozen self-test's report
#   build-VARIANT.json            timings and sizes of this run
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
variant="${VOICEBOT_BUNDLE_VARIANT:-cpu}"
case "$variant" in cpu|cuda) ;; *) echo "VOICEBOT_BUNDLE_VARIANT must be cpu or cuda" >&2; exit 2 ;; esac
out="${VOICEBOT_BUILD_DIR:-$here/packaging/build}"
py="${PYTHON:-$here/.venv/bin/python}"
say() { printf '\033[1mvoicebot build:\033[0m %s\n' "$*"; }

[ -x "$py" ] || { echo "no virtual environment at $py: run bash packaging/bootstrap.sh first" >&2; exit 1; }
if ! "$py" -c "import PyInstaller" 2>/dev/null; then
  say "installing PyInstaller (the build extra)"
  "$py" -m pip install -q -e ".[gui,build]"
fi
version="$("$py" -c 'import voicebot; print(voicebot.__version__)')"
arch="$(uname -m)"
name="voicebot-$version-linux-$arch-$variant"
mkdir -p "$out"

# --- 1. PyInstaller -------------------------------------------------------------------
say "building the $variant bundle (several minutes: torch is large)"
t0=$(date +%s)
VOICEBOT_BUNDLE_VARIANT="$variant" "$py" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist-$variant" --workpath "$out/work" packaging/pyinstaller/voicebot.spec
t1=$(date +%s)
bundle="$out/dist-$variant/voicebot"

# --- 2. Stage: bundle, desktop entry, icons, installer --------------------------------
say "staging $name"
stage="$out/stage-$variant/$name"
rm -rf "$out/stage-$variant"
mkdir -p "$stage/share/applications"
# Hard links: staging costs no disk space and no time.
cp -al "$bundle" "$stage/voicebot"
cp packaging/linux/voicebot.desktop "$stage/share/applications/"
for png in assets/icons/voicebot-*.png; do
  size="${png##*-}"; size="${size%.png}"
  mkdir -p "$stage/share/icons/hicolor/${size}x${size}/apps"
  cp "$png" "$stage/share/icons/hicolor/${size}x${size}/apps/voicebot.png"
done
mkdir -p "$stage/share/icons/hicolor/scalable/apps"
cp assets/icons/voicebot.svg "$stage/share/icons/hicolor/scalable/apps/voicebot.svg"
cp packaging/linux/install.sh "$stage/"
if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$stage/share/applications/voicebot.desktop"
fi

# --- 3. Tarball -------------------------------------------------------------------------
if command -v zstd >/dev/null 2>&1; then
  tarball="$out/$name.tar.zst"; compress=(zstd -T0 -6 -q)
else
  tarball="$out/$name.tar.gz"; compress=(gzip -6)
fi
say "packing $(basename "$tarball")"
tar -C "$out/stage-$variant" -cf - "$name" | "${compress[@]}" > "$tarball.part"
mv "$tarball.part" "$tarball"
t2=$(date +%s)

# --- 4. Smoke test: the frozen app's self-test ----------------------------------------
# A throwaway home; converted models go to a models folder of this build directory, so
# the bundle's one-time chat-model conversion never replaces the development one.
say "running the frozen app's --self-test (offscreen)"
mkdir -p "$out/selftest-models"
set +e
QT_QPA_PLATFORM=offscreen VOICEBOT_HOME="$out/selftest-home" \
  VOICEBOT_MODELS_DIR="$out/selftest-models" \
  "$stage/voicebot/voicebot" --self-test > "$out/selftest-$variant.json"
status=$?
set -e
t3=$(date +%s)

bundle_bytes=$(du -sb "$bundle" | cut -f1)
tar_bytes=$(stat -c %s "$tarball")
cat > "$out/build-$variant.json" <<JSON
{"variant": "$variant", "version": "$version", "build_s": $((t1 - t0)),
 "pack_s": $((t2 - t1)), "selftest_s": $((t3 - t2)), "selftest_exit": $status,
 "bundle_bytes": $bundle_bytes, "tarball": "$tarball", "tarball_bytes": $tar_bytes}
JSON
say "bundle $(du -sh "$bundle" | cut -f1), tarball $(du -sh "$tarball" | cut -f1), build $((t1 - t0)) s"
if [ $status -ne 0 ]; then
  say "the frozen self-test FAILED (exit $status): see $out/selftest-$variant.json"
  exit $status
fi
say "self-test passed: $out/selftest-$variant.json"
