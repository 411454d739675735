"""Typed settings: defaults, round trip, migrations, corrupt files backed up and reset."""

from __future__ import annotations

import json

import pytest

from voicebot import settings as settings_mod
from voicebot.paths import user_dirs
from voicebot.settings import (
    SCHEMA_VERSION,
    Settings,
    SettingsError,
    load_settings,
    save_settings,
    settings_from_dict,
)


def test_defaults_when_no_file():
    s = load_settings()
    assert s == Settings()
    assert s.chat.system_prompt  # a persona is set out of the box


def test_round_trip_lands_in_voicebot_home(voicebot_home):
    s = Settings()
    s.audio.input_device = "USB Mic"
    s.asr.lm_weight = 0.55
    path = save_settings(s)
    assert path == user_dirs().settings_file
    assert path.is_relative_to(voicebot_home)
    assert load_settings() == s
    assert not path.with_name(path.name + ".tmp").exists()


def test_int_accepted_for_float_and_missing_keys_default():
    s = settings_from_dict({"schema_version": 1, "asr": {"lm_weight": 1}})
    assert s.asr.lm_weight == 1.0 and isinstance(s.asr.lm_weight, float)
    assert s.tts == Settings().tts


@pytest.mark.parametrize("content", [
    "{not json",
    "[1, 2, 3]",
    json.dumps({"schema_version": 1, "asr": {"nbest": "five"}}),
    json.dumps({"schema_version": 1, "audio": {"headset_mode": 1}}),
    json.dumps({"schema_version": 1, "chat": "oops"}),
    json.dumps({"schema_version": SCHEMA_VERSION + 1}),
    "\udcff",
])
def test_bad_file_is_backed_up_and_reset(content, caplog):
    path = user_dirs().settings_file
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    s = load_settings()
    assert s == Settings()
    backups = list(path.parent.glob("settings.json.bak-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes() == content.encode("utf-8", "surrogateescape")
    assert not path.exists()
    assert "reset to defaults" in caplog.text


def test_unknown_keys_are_ignored_with_a_warning(caplog):
    s = settings_from_dict({"schema_version": 1, "color": "red", "tts": {"speed": 2}})
    assert s == Settings()
    assert "color" in caplog.text and "speed" in caplog.text


def test_migration_hook_runs(monkeypatch):
    # Pretend the schema moved to version 2 and renamed tts.voice -> tts.voice_id.
    monkeypatch.setattr(settings_mod, "SCHEMA_VERSION", 2)

    def v1_to_v2(data):
        data.setdefault("tts", {})["voice"] = data.get("tts", {}).pop("voice_id", "x") + "-v2"
        return data

    monkeypatch.setitem(settings_mod.MIGRATIONS, 1, v1_to_v2)
    s = settings_from_dict({"schema_version": 1, "tts": {"voice_id": "old"}})
    assert s.tts.voice == "old-v2"
    assert s.schema_version == 2


def test_settings_error_for_non_object():
    with pytest.raises(SettingsError):
        settings_from_dict("nope")
