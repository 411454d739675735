"""Test set-up shared by the whole suite.

Every test runs with VOICEBOT_HOME pointing into a temporary folder, so nothing is read
from or written to the real user's directories, and Qt runs offscreen. Converted models
are the exception: they are shared with the user's model folder that the set-up script
prepared (`voicebot models prepare`), so no test repeats a slow conversion.
"""

from __future__ import annotations

import os

import pytest

from voicebot.paths import MODELS_ENV, user_dirs

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SHARED_MODELS_DIR = str(user_dirs().models)


@pytest.fixture(autouse=True)
def voicebot_home(tmp_path, monkeypatch):
    """A fresh, empty voicebot home for each test (models shared, see above)."""
    home = tmp_path / "voicebot-home"
    monkeypatch.setenv("VOICEBOT_HOME", str(home))
    monkeypatch.setenv(MODELS_ENV, SHARED_MODELS_DIR)
    return home
