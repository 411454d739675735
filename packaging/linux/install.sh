#!/bin/sh
# Install the unpacked Voicebot bundle for the current user (no root needed):
#   the app folder  -> ~/.local/opt/voicebot
#   a launcher      -> ~/.local/bin/voicebot (without arguments: the desktop app)
#   the menu entry  -> ~/.local/share/applications/voicebot.desktop, icons in hicolor
# Run it from the unpacked tarball: ./install.sh      Remove: ./install.sh --uninstall
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${XDG_DATA_HOME:-$HOME/.local/share}"
opt="$HOME/.local/opt/voicebot"
bin="$HOME/.local/bin"

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$opt" "$bin/voicebot" "$prefix/applications/voicebot.desktop"
  find "$prefix/icons/hicolor" -name 'voicebot.*' -delete 2>/dev/null || true
  echo "Voicebot removed (your settings, models and recordings were kept)."
  exit 0
fi

mkdir -p "$opt" "$bin" "$prefix/applications"
# A fresh copy: files of an older version must not linger next to the new ones.
rm -rf "$opt.new" && cp -a "$here/voicebot" "$opt.new" && rm -rf "$opt" && mv "$opt.new" "$opt"
ln -sf "$opt/voicebot" "$bin/voicebot"
cp -a "$here/share/icons/." "$prefix/icons/"
sed "s|^Exec=.*|Exec=\"$opt/voicebot\"|" "$here/share/applications/voicebot.desktop" \
  > "$prefix/applications/voicebot.desktop"
command -v update-desktop-database >/dev/null 2>&1 \
  && update-desktop-database -q "$prefix/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 \
  && gtk-update-icon-cache -q -t "$prefix/icons/hicolor" || true
echo "Voicebot installed: find it in your applications menu, or run $bin/voicebot"
