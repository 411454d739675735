"""Where voicebot keeps its files.

Normally the platform's user directories (platformdirs). Setting ``VOICEBOT_HOME``
puts every directory under that one folder instead, which is what tests and portable
installs want: nothing is written outside it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from voicebot import APP_NAME

HOME_ENV = "VOICEBOT_HOME"
# Models are big and converted once; tests and portable installs may share one folder of
# them while everything else lives in a throwaway home.
MODELS_ENV = "VOICEBOT_MODELS_DIR"


@dataclass(frozen=True)
class UserDirs:
    config: Path
    data: Path
    cache: Path
    logs: Path

    @property
    def models(self) -> Path:
        """Downloaded, imported and converted model files."""
        override = os.environ.get(MODELS_ENV)
        return Path(override).expanduser().resolve() if override else self.data / "models"

    @property
    def voices(self) -> Path:
        """Recordings and training runs of the voice-adaptation studio."""
        return self.data / "voices"

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.json"

    @property
    def history_file(self) -> Path:
        return self.data / "history.json"

    def all(self) -> dict[str, Path]:
        return {"config": self.config, "data": self.data, "cache": self.cache, "logs": self.logs}


def user_dirs() -> UserDirs:
    """The directories to use now (re-read every call so tests can change the env)."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return UserDirs(root / "config", root / "data", root / "cache", root / "logs")
    return UserDirs(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )


def ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root() -> Path:
    """The source checkout, or in a frozen (PyInstaller) app the bundle's data folder,
    where the spec puts assets/ and models/catalog.toml."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    return repo_root() / "assets"
