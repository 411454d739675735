"""Soak: 200 spoken turns through the virtual devices without memory growth or overflows.

Slow (about 15 minutes here): not in the default suite. Run it with
`.venv/bin/python -m pytest -m slow tests/pipeline/test_soak.py`.
"""

from __future__ import annotations

import time
from dataclasses import replace

import psutil
import pytest

from voicebot.pipeline.live_session import Session
from voicebot.settings import Settings

TURNS = 200
WARM_UP_TURNS = 10  # caches, allocator pools and lazy imports settle first


@pytest.mark.slow
@pytest.mark.audio
@pytest.mark.timeout(3000)  # the suite's 600 s is for single tests; 200 turns take ~15 min
def test_two_hundred_turns(engines, virtual_audio, question_audio):
    settings = Settings()
    settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
    saved_options = engines.chat.options
    engines.chat.options = replace(saved_options, max_new_tokens=24)  # short replies
    session = Session(settings, loads_models=False, persist=False)
    session.start(engines)
    conversation, capture = session.conversation, session.capture
    process = psutil.Process()
    rss_after_warm_up = None
    try:
        for i in range(TURNS):
            turn = conversation.start_listening()
            starts = virtual_audio.inject(question_audio, 16000)
            time.sleep(max(0.0, starts - time.monotonic()) + len(question_audio) / 16000 + 0.2)
            conversation.stop_listening()
            assert turn.finished.wait(120), f"turn {i} hung"
            assert turn.error is None, turn.error
            assert turn.user_text and turn.reply_text
            if i + 1 == WARM_UP_TURNS:
                rss_after_warm_up = process.memory_info().rss
        growth = process.memory_info().rss / rss_after_warm_up - 1.0
        assert growth < 0.05, f"memory grew {growth:.1%} over {TURNS - WARM_UP_TURNS} turns"
        assert capture.input_overflows == 0
        assert len(conversation.history) <= 2 * TURNS
    finally:
        engines.chat.options = saved_options
        session.close()
