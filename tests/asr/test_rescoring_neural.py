"""Neural rescoring: the chat model's view of the conversation as an extra term (real
SmolLM2-135M and Whisper tiny.en)."""

from __future__ import annotations

import pytest

from voicebot.asr.recognizer import Hypothesis
from voicebot.asr.rescoring import NEURAL_WEIGHT, TUNED_WEIGHTS, Weights, rescore
from voicebot.asr.wer import count_errors
from voicebot.asr.whisper_engine import WhisperRecognizer

NAME_QUESTION = [{"role": "assistant", "content": "Nice to meet you! What's your name?"}]
WITH_NEURAL = Weights(TUNED_WEIGHTS.acoustic, TUNED_WEIGHTS.lm, TUNED_WEIGHTS.word_bonus,
                      NEURAL_WEIGHT or 0.3)


@pytest.fixture(scope="module")
def scorer():
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer

    return load_hypothesis_scorer(threads=1)  # the app's: ONNX on the CPU


def test_the_dialogue_picks_the_likely_answer(scorer, ngram_lm):
    """The acoustics slightly prefer common words; the bot has just asked for a name."""
    nbest = [Hypothesis("And at least.", acoustic_score=-3.0, n_tokens=4),
             Hypothesis("Anneliese.", acoustic_score=-3.1, n_tokens=4)]
    assert rescore(nbest, ngram_lm, WITH_NEURAL).text == "And at least."  # no scorer
    result = rescore(nbest, ngram_lm, WITH_NEURAL, neural=scorer, context=NAME_QUESTION)
    assert result.text == "Anneliese."
    assert all("neural_score" in h.extras for h in result.hypotheses)
    # Weight 0 turns it off: the scorer is not even asked.
    off = Weights(TUNED_WEIGHTS.acoustic, TUNED_WEIGHTS.lm, TUNED_WEIGHTS.word_bonus, 0.0)
    assert rescore(nbest, ngram_lm, off, neural=scorer, context=NAME_QUESTION).text \
        == "And at least."


def test_plain_sentences_are_never_made_worse(scorer, ngram_lm, whisper_model, clips):
    """Real recordings with no conversation: the neural term makes no result worse.

    (It asked "changes nothing" before; on another CPU the int8 Whisper's scores differ a
    little, the plain 1-best of "he was not an ill disposed young man" became "...an
    old-sposed young man", and the chat model's term put it right.)"""
    recognizer = WhisperRecognizer(whisper_model, nbest=5, streaming=False)
    for utterance, audio in clips[:5]:
        recognizer.feed(audio)
        nbest = recognizer.finish(5)
        plain = rescore(nbest, ngram_lm, TUNED_WEIGHTS).text
        neural = rescore(nbest, ngram_lm, WITH_NEURAL, neural=scorer).text
        assert count_errors(utterance.reference, neural).errors \
            <= count_errors(utterance.reference, plain).errors, (utterance.reference, plain,
                                                                 neural)


def test_a_repetition_never_wins_through_the_chat_model(scorer, ngram_lm):
    """Whatever the chat model thinks of "Thank you, thank you.", it only repeats."""
    nbest = [Hypothesis("Thank you, thank you.", acoustic_score=-1.0, n_tokens=5),
             Hypothesis("Thank you.", acoustic_score=-4.0, n_tokens=3)]
    context = [{"role": "assistant", "content": "Here is your coffee."}]
    result = rescore(nbest, ngram_lm, Weights(1.0, 0.05, 0.0, 5.0), neural=scorer,
                     context=context)
    assert [h.text for h in result.hypotheses] == ["Thank you.", "Thank you, thank you."]


class _Broken:
    def score(self, texts, context=None):
        raise RuntimeError("out of memory")


def test_a_failing_scorer_leaves_the_ranking_to_the_rest(ngram_lm):
    nbest = [Hypothesis("four of close", -3.0), Hypothesis("four of clubs", -3.15)]
    assert rescore(nbest, ngram_lm, WITH_NEURAL, neural=_Broken(), context="Pick a card.").text \
        == rescore(nbest, ngram_lm, TUNED_WEIGHTS).text


def test_the_session_gives_the_scorer_the_conversation():
    """The pipeline's wiring: the conversation so far is the context of each n-best."""
    from types import SimpleNamespace

    from voicebot.pipeline.session import Engines
    from voicebot.settings import Settings

    seen = []

    class Recording:
        def score(self, texts, context=None):
            seen.append(context)
            return [SimpleNamespace(logprob=-1.0 - i, n_tokens=3) for i in range(len(texts))]

    settings = Settings()
    settings.asr.neural_weight = 0.3
    history = [{"role": "assistant", "content": "What's your name?"}]
    rescorer = Engines(scorer=Recording()).rescorer(settings, lambda: history)
    ranked = rescorer([Hypothesis("Anneliese.", -3.0), Hypothesis("And at least.", -2.9)])
    assert seen == [history] and ranked[0].text == "Anneliese."


def test_the_app_rescores_with_the_chat_model_by_default():
    """On by default at the measured weight; weight 0 loads nothing."""
    from voicebot.pipeline.session import load_hypothesis_scorer
    from voicebot.settings import Settings

    assert Settings().asr.neural_weight == NEURAL_WEIGHT
    settings = Settings()
    settings.asr.neural_weight = 0.0
    assert load_hypothesis_scorer(settings) is None


def test_the_session_prepares_the_next_context_when_a_turn_ends():
    """After each turn the scorer computes the new conversation ahead of the next n-best."""
    import threading

    from voicebot.pipeline.session import Engines, build_conversation
    from voicebot.settings import Settings

    prepared, done = [], threading.Event()

    class Preparing:
        def prepare(self, context):
            prepared.append(context)
            done.set()

    class Chat:
        def stream(self, history, cancel=None):
            yield "What's your name?"

    engines = Engines(chat=Chat(), scorer=Preparing())
    conversation = build_conversation(Settings(), engines, player=None)
    turn = conversation.submit_text("Hello there.")
    assert turn is not None and turn.finished.wait(10)
    assert done.wait(10)
    assert prepared[0][-1]["role"] == "assistant"
    assert prepared[0] == conversation.history
    conversation.close()


def test_the_chat_model_is_not_asked_when_it_could_not_change_the_winner():
    """A lead the neural term cannot undo skips the scorer (its ~100 ms come off the
    reply); a close call still asks it."""
    from types import SimpleNamespace

    from voicebot.asr.rescoring import NEURAL_DECIDES_NATS

    asked = []

    class Recording:
        def score(self, texts, context=None):
            asked.append(list(texts))
            return [SimpleNamespace(logprob=-1.0 - i, n_tokens=3) for i in range(len(texts))]

    lead = WITH_NEURAL.neural * NEURAL_DECIDES_NATS
    close = [Hypothesis("four of clubs", -3.0), Hypothesis("four of close", -3.1)]
    far = [Hypothesis("four of clubs", -3.0), Hypothesis("four of close", -3.0 - 2 * lead)]
    assert rescore(far, None, WITH_NEURAL, neural=Recording()).text == "four of clubs"
    assert asked == []
    ranked = rescore(close, None, WITH_NEURAL, neural=Recording()).hypotheses
    assert asked == [["four of clubs", "four of close"]]
    assert all("neural_score" in h.extras for h in ranked)
