"""User directories honour VOICEBOT_HOME; logs go to a rotating file there."""

from __future__ import annotations

import logging

from voicebot.logging_setup import log_file, setup_logging
from voicebot.paths import MODELS_ENV, user_dirs


def test_voicebot_home_overrides_every_dir(voicebot_home, monkeypatch):
    monkeypatch.delenv(MODELS_ENV)
    dirs = user_dirs()
    for path in [*dirs.all().values(), dirs.models, dirs.voices, dirs.settings_file]:
        assert path.is_relative_to(voicebot_home), path


def test_models_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "shared-models"))
    assert user_dirs().models == (tmp_path / "shared-models").resolve()


def test_log_file_receives_messages(voicebot_home):
    path = setup_logging(logging.INFO, console=False)
    try:
        assert path == log_file() and path.is_relative_to(voicebot_home)
        logging.getLogger("voicebot.test").warning("hello from the test")
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "hello from the test" in path.read_text()
    finally:
        setup_logging(logging.INFO, console=False)  # detach from this test's file
