"""Take the README's screenshot: the main window mid-turn, with real models and audio.

Starts the virtual microphone and speaker, loads the default engines, speaks a question
into the microphone, and grabs the window while the bot is speaking its reply.

    .venv/bin/python packaging/screenshot.py [assets/screenshots/conversation.png]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "assets/screenshots/conversation.png")
    os.environ.setdefault("VOICEBOT_HOME", tempfile.mkdtemp(prefix="voicebot-shot-"))
    from PySide6.QtWidgets import QApplication

    from voicebot.audio.virtual_device import VirtualAudio
    from voicebot.pipeline.session import load_engines
    from voicebot.pipeline.state import TurnState
    from voicebot.settings import Settings
    from voicebot.tts.base import collect
    from voicebot.ui.app import create_app
    from voicebot.ui.main_window import MainWindow

    with VirtualAudio() as audio:
        app = create_app(sys.argv[:1])
        settings = Settings()
        settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
        engines = load_engines(settings, device="cpu")
        window = MainWindow(settings, load_models=False)
        window.resize(1000, 720)
        window.show()
        tab = window.conversation_tab
        tab.use_engines(engines)

        def pump(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.01)

        tab.text_box.setText("Hi! What can you do?")
        tab.send_text()
        while not tab.conversation.wait_idle(0):
            pump(0.05)
        question, rate = collect(engines.synthesizer.stream("What is the capital of France?"))
        tab.press_talk()
        pump(0.2)
        starts = audio.inject(question, rate)
        pump(starts - time.monotonic() + len(question) / rate + 0.3)
        tab.release_talk()
        while tab.conversation.state is not TurnState.SPEAKING:
            pump(0.02)
        pump(0.6)
        out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(out))
        print(f"saved {out}")
        window.close()
        QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
