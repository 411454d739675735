"""What the window says about each state, without Qt."""

from __future__ import annotations

import pytest

from voicebot.pipeline.display_state import LOOK, TURN_PHASE, Phase, shown, timing_text
from voicebot.pipeline.state import TurnState


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_has_its_own_pill_and_a_status(phase):
    look = shown(phase, can_talk=True)
    assert look.pill and look.color.startswith("#") and look.status
    name = look.pill.rstrip("…")
    assert look.status_bar.startswith(f"{name}") and look.status_bar.endswith(look.status)
    assert look.status_bar.count(f"{name}:") <= 1  # never "Ready: Ready: ..."
    assert len({pill for pill, _ in LOOK.values()}) == len(Phase)


def test_every_turn_state_but_idle_is_a_phase():
    assert set(TURN_PHASE) == set(TurnState) - {TurnState.IDLE}


def test_the_ready_hint_says_how_to_talk():
    assert "Ctrl+Space" in shown(Phase.READY, can_talk=True).status
    assert shown(Phase.READY).status == "Ready: type a message and press Enter."
    assert "just start speaking" in shown(Phase.WAITING, can_talk=True, hands_free=True).status
    assert shown(Phase.READY, detail="No speaker (gone)").status == "No speaker (gone)"
    assert shown(Phase.LOADING, detail="loading the voice").status == \
        "Loading: loading the voice…"


def test_problems_are_named():
    assert shown(Phase.ERROR, detail="RuntimeError: x").status == "Problem: RuntimeError: x"
    assert shown(Phase.DEVICE_LOST, detail="mic gone").status == "Audio device lost: mic gone"


def test_timing_names_what_it_measures():
    spoken = {"asr_ms": 310.4, "lm_first_token_ms": 520.0, "tts_first_audio_ms": 200.2,
              "voice_to_voice_ms": 1412.0, "reply_ms": 1100.0}
    assert timing_text(spoken) == ("recognised in 310 ms · first word after 520 ms · "
                                   "voice ready in 200 ms · first sound after 1412 ms (total)")
    typed = {"lm_first_token_ms": 400.0, "reply_ms": 412.0}
    assert timing_text(typed) == "first word after 400 ms · first sound after 412 ms (total)"
    assert timing_text({}) == ""
    assert shown(Phase.SPEAKING, timing=typed).timing == timing_text(typed)
    assert shown(Phase.LOADING, timing=typed).timing == ""  # not about a turn


def test_a_language_mismatch_on_the_result_reaches_the_user():
    """The recogniser's language finding (Vosk on speech it does not know) becomes a
    notice for the window, once per turn; a result without one stays silent."""
    from types import SimpleNamespace

    from voicebot.asr.recognizer import Hypothesis
    from voicebot.pipeline.conversation import Turn
    from voicebot.pipeline.session_events import ConversationEvents, SessionListener

    class Notices(SessionListener):
        def __init__(self):
            self.notices = []

        def notice(self, text):
            self.notices.append(text)

    listener = Notices()
    events = ConversationEvents(SimpleNamespace(listener=listener))
    message = ("This sounds like English, but the speech recogniser (vosk-ko) only knows "
               "Korean: the text is likely wrong.")
    heard = Hypothesis("주사위", -3.0)
    heard.extras["language"] = {"mismatch": True, "message": message}
    events.final_transcript(Turn(1, "voice", hypotheses=[heard]))
    events.final_transcript(Turn(2, "voice", hypotheses=[Hypothesis("hello there", -1.0)]))
    assert listener.notices == [message]


def test_the_first_screen_says_how_to_talk_which_models_and_where_to_train():
    from voicebot.pipeline.display_state import EngineNames, welcome_lines

    loading = " ".join(welcome_lines(None))
    assert "Loading the models" in loading
    names = EngineNames(recognizer="whisper-tiny-en", chat="smollm2-135m-instruct",
                        voice="piper-en-us-joe-medium")
    ready = welcome_lines(names, can_talk=True)
    assert ready[0].startswith("Hold the button or Space") and "type a message" in ready[0]
    assert "listening with whisper-tiny-en" in ready[1]
    assert "replying with smollm2-135m-instruct" in ready[1]
    assert "speaking with piper-en-us-joe-medium" in ready[1]
    assert "Training tab" in ready[2]
    assert welcome_lines(names, can_talk=True, hands_free=True)[0].startswith(
        "Just start speaking")
    no_voice = welcome_lines(EngineNames(chat="smollm2-135m-instruct"))
    assert no_voice[0].startswith("Type a message") and "replies as text only" in no_voice[1]
    assert "did not load" in welcome_lines(EngineNames())[0]
