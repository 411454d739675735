"""PyInstaller runtime hook: runs in the frozen app before any of voicebot's code.

1. A windowed build (``console=False``, the Windows/macOS ``voicebot-gui``) starts with
   ``sys.stdout`` and ``sys.stderr`` set to None. Libraries write to them anyway (tqdm
   progress bars in transformers, warnings, ``print``) and would raise AttributeError,
   so they get a sink that discards everything. The log file still records what matters.
2. espeak-ng looks for its phoneme data at the path compiled into the system library.
   The bundle carries its own copy (see bundle_files.espeak_files); ESPEAK_DATA_PATH
   points the library at it unless the user set it.
"""

import os
import sys

for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115

_espeak_data = os.path.join(getattr(sys, "_MEIPASS", ""), "espeak-ng-data")
if os.path.isdir(_espeak_data):
    os.environ.setdefault("ESPEAK_DATA_PATH", _espeak_data)
