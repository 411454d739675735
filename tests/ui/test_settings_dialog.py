"""The Settings dialog: shows devices and models, round-trips what the user changes."""

from __future__ import annotations

from voicebot.settings import Settings, load_settings


def test_settings_round_trip(qtbot, virtual_audio):
    from voicebot.ui.main_window import MainWindow

    window = MainWindow(Settings(), load_models=False)
    qtbot.addWidget(window)
    dialog = window.open_settings()
    inputs = [dialog.input_combo.itemData(i) for i in range(dialog.input_combo.count())]
    outputs = [dialog.output_combo.itemData(i) for i in range(dialog.output_combo.count())]
    assert "vmic" in inputs and "vspeaker" in outputs
    dialog.input_combo.setCurrentIndex(inputs.index("vmic"))
    dialog.headset_box.setChecked(True)
    dialog.lm_spin.setValue(0.42)
    assert abs(dialog.neural_spin.value() - 0.1) < 1e-9  # the chat model rescoring: on
    dialog.neural_spin.setValue(0.0)
    dialog.prompt_edit.setPlainText("You are a pirate. Answer briefly.")
    # Installed models are marked; the embedded defaults are installed.
    chat_items = [dialog.chat_model.combo.itemText(i)
                  for i in range(dialog.chat_model.combo.count())]
    assert any("smollm2-135m-instruct" in t and "installed" in t for t in chat_items)
    assert not dialog.chat_model.download_button.isVisible()
    dialog.accept()

    saved = load_settings()
    assert saved.audio.input_device == "vmic" and saved.audio.headset_mode
    assert abs(saved.asr.lm_weight - 0.42) < 1e-9
    assert saved.asr.neural_weight == 0.0
    assert saved.chat.system_prompt == "You are a pirate. Answer briefly."
    assert window.settings == saved
    window.close()


def test_level_test_hears_the_microphone(qtbot, virtual_audio):
    import numpy as np

    from voicebot.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(Settings())
    qtbot.addWidget(dialog)
    dialog.input_combo.setCurrentIndex(dialog.input_combo.findData("vmic"))
    dialog.level_test.start()
    qtbot.wait(300)
    t = np.arange(16000) / 16000
    virtual_audio.inject((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    qtbot.waitUntil(lambda: dialog.level_test.capture is None, timeout=10_000)
    assert dialog.level_test.result.text().startswith("Good"), dialog.level_test.result.text()
    dialog.reject()


def test_uninstalled_model_offers_download(qtbot):
    from voicebot.ui.settings_dialog import ModelChooser

    chooser = ModelChooser(("chat-lm",), "qwen2.5-0.5b-instruct")
    qtbot.addWidget(chooser)
    chooser.show()
    row = chooser.selected_row()
    assert row is not None and not row["installed"]
    assert chooser.download_button.isVisible()


def test_a_model_that_is_not_installed_is_refused(qtbot, virtual_audio):
    """Choosing a catalog model that is not installed and pressing OK keeps the dialog
    open with the reason; nothing is saved until an installed model is chosen."""
    from voicebot.ui.main_window import MainWindow

    window = MainWindow(Settings(), load_models=False)
    qtbot.addWidget(window)
    dialog = window.open_settings()
    combo = dialog.asr_model.combo
    ids = [combo.itemData(i) for i in range(combo.count())]
    assert "whisper-base" in ids and "installed" not in combo.itemText(ids.index("whisper-base"))
    combo.setCurrentIndex(ids.index("whisper-base"))
    assert not dialog.asr_model.download_button.isHidden()  # the way out is offered
    dialog.accept()
    assert dialog.isVisible() and dialog.result() == 0
    assert "Not installed: whisper-base" in dialog.problem.text()
    assert load_settings().asr.model == "whisper-tiny-en"
    combo.setCurrentIndex(ids.index("whisper-tiny-en"))
    dialog.accept()
    assert not dialog.isVisible() and load_settings().asr.model == "whisper-tiny-en"
    window.close()
