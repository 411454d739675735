"""Entry point of the frozen app (both executables of the bundle run this script).

Every executable of the bundle runs it: ``voicebot`` (a console program: the desktop
app without arguments, the command line and ``--self-test`` with them) and, on Windows
and macOS, ``voicebot-gui`` (windowed, so no console window opens; always the desktop
app). The name it was started as decides which entry point runs.
"""

import os
import sys

from voicebot.cli import gui_main, main

if __name__ == "__main__":
    name = os.path.splitext(os.path.basename(sys.executable))[0].lower()
    sys.exit(gui_main() if name.endswith("-gui") else main())
