"""A voice (or any engine) that cannot load never breaks the app: the previous voice keeps
speaking, the settings keep only what loaded, and the conversation goes on.

Real engines, the virtual microphone/speaker, offscreen Qt. The only broken thing is made
on disk the way it happens to users: a run folder whose model_file.pth was cut off.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from tests.training.test_wizard_takes import screenshot
from voicebot.paths import user_dirs
from voicebot.pipeline.state import TurnState
from voicebot.settings import Settings, load_settings, save_settings
from voicebot.tts.voices import DEFAULT_VOICE

pytestmark = pytest.mark.audio


def broken_voice() -> str:
    """A trained-voice run folder whose weights file was truncated (a full disk, a copy
    interrupted): config.json is fine, model_file.pth is half there."""
    run = user_dirs().voices / "Broken voice" / "runs" / "run-20261206-080000"
    run.mkdir(parents=True)
    config = {"model": "tacotron2", "r": 2, "audio": {"sample_rate": 22050}}
    torch.save({"model": {"decoder.weight": torch.randn(256, 256)}, "config": config,
                "step": 400, "r": 2}, run / "model_file.pth")
    data = (run / "model_file.pth").read_bytes()
    (run / "model_file.pth").write_bytes(data[:len(data) // 2])
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return str(run)


def settings_for_test() -> Settings:
    settings = Settings()
    settings.audio.input_device = "vmic"
    settings.audio.output_device = "vspeaker"
    return settings


@pytest.fixture
def window(qtbot, engines, virtual_audio):
    from voicebot.ui.main_window import MainWindow

    settings = settings_for_test()
    save_settings(settings)  # the file exists: what it says after a switch is checked
    win = MainWindow(settings, load_models=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    # A copy: a voice switch must not change the session's shared engines.
    win.conversation_tab.use_engines(dataclasses.replace(engines, problems={}))
    yield win
    win.close()


def typed_turn_is_spoken(qtbot, tab, virtual_audio, text="Hello, who are you?"):
    """Type a message; the reply must be shown and heard on the virtual speaker."""
    since = virtual_audio.speaker_frames()
    tab.text_box.setText(text)
    qtbot.keyClick(tab.text_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.conversation.turns
                    and tab.conversation.turns[-1].finished.is_set()
                    and tab.conversation.state is TurnState.IDLE, timeout=90_000)
    turn = tab.conversation.turns[-1]
    assert turn.error is None and turn.reply_text.strip() and turn.spoken
    audio, _ = virtual_audio.speaker_audio(since)
    assert np.abs(audio).max(initial=0) > 0.05, "the reply was not heard"
    return turn


def test_use_this_voice_on_broken_files_keeps_the_old_voice(qtbot, window, virtual_audio):
    conversation_tab, training_tab = window.conversation_tab, window.training_tab
    # The studio checks takes with the conversation's Whisper.
    assert training_tab.app_recognizer is conversation_tab.engines.recognizer
    old_voice = conversation_tab.conversation.synthesizer
    results = []
    conversation_tab.voice_changed.connect(lambda *args: results.append(args))
    chosen = []
    training_tab.voice_chosen.connect(chosen.append)
    run = broken_voice()

    preview = training_tab.preview_page
    preview.set_model_dir(run)
    assert preview.use_button.isEnabled()
    qtbot.mouseClick(preview.use_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)

    voice, ok, message = results[0]
    assert voice == run and not ok and not chosen
    assert "could not be loaded" in message and "previous voice keeps speaking" in message
    assert "\n" not in message  # one line
    assert conversation_tab.conversation.synthesizer is old_voice
    assert window.settings.tts.voice == DEFAULT_VOICE
    assert load_settings().tts.voice == DEFAULT_VOICE  # nothing broken was written
    assert conversation_tab.notice_label.isVisible()
    assert "Broken voice (run-20261206-080000)" in conversation_tab.notice_label.text()
    assert "✘" in preview.info_label.text()
    typed_turn_is_spoken(qtbot, conversation_tab, virtual_audio)
    screenshot(window, "conversation-after-broken-voice.png")


def test_use_this_voice_that_loads_switches_and_only_then_is_saved(qtbot, window,
                                                                   virtual_audio):
    from voicebot.models import resolve

    conversation_tab, training_tab = window.conversation_tab, window.training_tab
    old_voice = conversation_tab.conversation.synthesizer
    # Another voice that loads: the embedded Piper voice named by its file.
    onnx = str(resolve(DEFAULT_VOICE))
    assert onnx.endswith(".onnx")
    results, chosen = [], []
    conversation_tab.voice_changed.connect(lambda *args: results.append(args))
    training_tab.voice_chosen.connect(chosen.append)
    training_tab.use_voice(onnx)
    assert load_settings().tts.voice == DEFAULT_VOICE  # not before it has loaded
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    assert results[0][:2] == (onnx, True) and chosen == [onnx]
    new_voice = conversation_tab.conversation.synthesizer
    assert new_voice is not old_voice and conversation_tab.engines.voice == onnx
    assert window.settings.tts.voice == onnx and load_settings().tts.voice == onnx
    assert "✔" in training_tab.preview_page.info_label.text()
    turn = typed_turn_is_spoken(qtbot, conversation_tab, virtual_audio)
    assert conversation_tab.conversation.synthesizer is new_voice and turn.spoken


def test_start_up_with_a_broken_saved_voice_and_recognizer(qtbot, virtual_audio):
    """Saved settings name a voice whose files broke and a recognizer that is gone: the
    default voice speaks, the chat model answers, typing works, and the notice says
    why in one line each."""
    from voicebot.ui.main_window import MainWindow

    settings = settings_for_test()
    settings.tts.voice = broken_voice()
    settings.asr.model = "whisper-removed-model"
    save_settings(settings)
    win = MainWindow(load_settings(), load_models=True)
    qtbot.addWidget(win)
    win.show()
    tab = win.conversation_tab
    try:
        with qtbot.waitSignal(tab.engines_ready, timeout=180_000):
            pass
        notice = tab.notice_label.text()
        assert tab.notice_label.isVisible()
        assert "speech recognizer could not be loaded" in notice
        assert "typing still works" in notice
        assert "Broken voice (run-20261206-080000) could not be loaded" in notice
        assert "default voice speaks instead" in notice
        assert tab.engines.recognizer is None and tab.engines.chat is not None
        assert tab.engines.voice == DEFAULT_VOICE
        assert win.settings.tts.voice == DEFAULT_VOICE
        assert load_settings().tts.voice == DEFAULT_VOICE  # the broken choice is gone
        assert not tab.talk_button.isEnabled() and tab.text_box.isEnabled()
        typed_turn_is_spoken(qtbot, tab, virtual_audio, "What is two plus two?")
    finally:
        win.close()


def test_a_failing_engine_does_not_take_the_others_down():
    """GUI-free: each role loads on its own; strict loading (tools) still raises."""
    from voicebot.pipeline.session import load_engines

    settings = Settings()
    settings.asr.model = "whisper-removed-model"
    settings.chat.model = "chat-removed-model"
    engines = load_engines(settings, device="cpu", strict=False,
                           roles=("recognizer", "chat", "voice"))
    assert engines.recognizer is None and engines.chat is None
    assert engines.synthesizer is not None and engines.voice == DEFAULT_VOICE
    assert set(engines.problems) == {"recognizer", "chat"}
    assert "the bot cannot answer" in engines.problems["chat"]
    assert all("\n" not in line for line in engines.problems.values())
    # Reloading only the recognizer keeps the voice, and a failure keeps a previous one.
    again = load_engines(settings, device="cpu", strict=False, roles=("recognizer",),
                         previous=dataclasses.replace(engines, recognizer="previous"))
    assert again.recognizer == "previous" and again.synthesizer is engines.synthesizer
    assert "the previous one is kept" in again.problems["recognizer"]
    with pytest.raises(Exception, match="whisper-removed-model"):
        load_engines(settings, device="cpu", roles=("recognizer",))


def test_a_broken_voice_chosen_in_settings_is_not_saved(qtbot, window, virtual_audio):
    """The Settings dialog's path: other sections apply at once, the voice only once it
    has loaded (here never)."""
    import copy

    conversation_tab = window.conversation_tab
    old_voice = conversation_tab.conversation.synthesizer
    results = []
    conversation_tab.voice_changed.connect(lambda *args: results.append(args))
    chosen = copy.deepcopy(window.settings)
    chosen.tts.voice = broken_voice()
    chosen.chat.max_reply_tokens = 64  # any other setting is written at once
    window.apply_settings(chosen)
    assert load_settings().tts.voice == DEFAULT_VOICE  # not written before it loads
    assert load_settings().chat.max_reply_tokens == 64
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    assert results[0][1] is False
    qtbot.waitUntil(lambda: conversation_tab.conversation is not None, timeout=120_000)
    assert conversation_tab.conversation.synthesizer is old_voice
    assert window.settings.tts.voice == DEFAULT_VOICE
    assert load_settings().tts.voice == DEFAULT_VOICE
    assert "could not be loaded" in conversation_tab.notice_label.text()
    typed_turn_is_spoken(qtbot, conversation_tab, virtual_audio)
