"""The embedded Piper voice (en_US-joe-medium) on onnxruntime, for real."""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading

import numpy as np
import pytest

from voicebot.tts.base import Synthesizer, collect
from voicebot.tts.espeak import phonemize
from voicebot.tts.piper import PiperVoice


def test_it_is_a_synthesizer(piper_voice):
    assert isinstance(piper_voice, Synthesizer)
    assert piper_voice.sample_rate == 22050
    [info] = piper_voice.voices()
    assert info.id == "piper-en-us-joe-medium" and info.sample_rate == 22050


def test_espeak_gives_ipa():
    assert phonemize("Hello world", "en-us") == "həlˈoʊ wˈɜːld"


def test_speech_is_real_and_of_plausible_length(piper_voice):
    text = "The weather today is sunny and warm."
    audio, rate = collect(piper_voice.stream(text))
    assert rate == 22050 and audio.dtype == np.float32
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    seconds = len(audio) / rate
    assert 1.2 < seconds < 4.5  # seven words at a speaking rate of ~2-5 words/s
    rms = float(np.sqrt(np.mean(audio ** 2)))
    assert rms > 0.02, "speech should not be near-silent"
    # Speech has pauses and louder stretches: the frame energy must vary.
    frames = audio[: len(audio) // 512 * 512].reshape(-1, 512)
    energy = np.sqrt((frames ** 2).mean(axis=1))
    assert energy.max() > 5 * np.percentile(energy, 10)


def test_first_audio_comes_before_the_sentence_is_done(piper_voice):
    chunks = list(piper_voice.stream("Sure, I can set a timer for ten minutes from now."))
    assert piper_voice.streams_within_sentences
    assert len(chunks) >= 3
    assert chunks[0].text == "Sure,"
    assert chunks[0].duration_s < 0.5
    assert chunks[-1].end_of_sentence and not chunks[0].end_of_sentence


def test_first_chunk_is_yielded_before_the_next_window_is_decoded(piper_voice):
    runs = []

    class CountingDecoder:
        def __init__(self, session):
            self.session = session

        def run(self, *args):
            runs.append(1)
            return self.session.run(*args)

    voice = copy.copy(piper_voice)
    voice._decoder = CountingDecoder(piper_voice._decoder)
    chunks = voice.stream("This single sentence has no comma in it but it is long enough.")
    next(chunks)
    assert len(runs) == 1
    assert len(list(chunks)) >= 1 and len(runs) >= 2


def test_first_window_needs_the_flow_over_its_own_frames_only(piper_voice):
    """The flow (a third of the text-to-latent time) runs over the first window's frames
    and its receptive field, not over the whole sentence, before the first audio."""
    calls = []

    class RecordingFlow:
        def __init__(self, session):
            self.session = session

        def run(self, outputs, feeds):
            calls.append(next(iter(feeds.values())).shape[2])
            return self.session.run(outputs, feeds)

    voice = copy.copy(piper_voice)
    voice._flow = RecordingFlow(piper_voice._flow)
    chunks = voice.stream("This single sentence has no comma in it but it is long enough.",
                          split_first=False)
    next(chunks)
    [first_call] = calls
    rest = list(chunks)
    frames = round(sum(c.duration_s for c in rest) * piper_voice.sample_rate / 256)
    assert first_call < frames / 2
    assert len(calls) == 2


def test_split_windowed_voice_matches_the_original_graph(piper_voice):
    """Cut graph + windowed decoding give the samples of the original model in one call."""
    from voicebot.models import resolve

    original = PiperVoice(resolve("piper-en-us-joe-medium"), streaming=False, warm_up=False)
    streaming = copy.copy(piper_voice)
    # Without noise the voice is deterministic, so the two can be compared sample by sample.
    original.config = streaming.config = dataclasses.replace(
        piper_voice.config, noise_scale=0.0, noise_w=0.0)
    ids = original.phoneme_ids(original.phonemes(
        "This sentence is long enough to need several decoder windows, for sure."))
    assert streaming._flow is not None  # the flow runs in windows too
    windows = list(streaming.stream_ids(ids))
    assert len(windows) >= 2
    streamed, reference = np.concatenate(windows), original.synthesize_ids(ids)
    assert streamed.shape == reference.shape
    assert np.abs(streamed - reference).max() < 1e-3


@pytest.mark.parametrize("text", ["", "   \n ", "😀🎉👍", "...", "🙂 !!"])
def test_nothing_to_say_gives_no_audio_and_returns(piper_voice, text):
    assert list(piper_voice.stream(text)) == []


def test_characters_outside_the_phoneme_map_are_dropped(piper_voice, caplog):
    with caplog.at_level(logging.DEBUG, logger="voicebot.tts.piper"):
        ids = piper_voice.phoneme_ids("hə☃lˈoʊ")
    expected = piper_voice.phoneme_ids("həlˈoʊ")
    assert ids == expected
    assert "not in voice" in caplog.text and "☃" in caplog.text


@pytest.mark.parametrize("text", [
    "Bonjour, je m'appelle Jean. Привет мир! 日本語です。 ʘ‿ʘ ∑∫≈",
    "مرحبا بالعالم and some English",
    "\x00\x01 control \x7f characters",
    "Z̸̢̛a̴l̷g̵o̶ text",
    "<b>tags</b> {braces} [brackets] | pipes",
    "\ud800 a lone surrogate",
])
def test_non_english_and_odd_text_do_not_crash(piper_voice, text):
    audio, _ = collect(piper_voice.stream(text))
    assert audio.size > 0 and np.all(np.isfinite(audio))


def test_a_text_only_in_another_script_is_skipped_not_spelled(piper_voice):
    """An English voice says nothing for Arabic alone (espeak would say "Arabic letter")."""
    audio, _ = collect(piper_voice.stream("مرحبا بالعالم"))
    assert audio.size == 0


def test_long_text_streams_in_bounded_pieces_and_cancels(piper_voice):
    sentence = "This is one of many sentences in a very long reply, and it goes on. "
    text = (sentence * 80)[:5000]
    cancel = threading.Event()
    heard = 0.0
    chunks = 0
    for chunk in piper_voice.stream(text, cancel):
        chunks += 1
        heard += chunk.duration_s
        assert chunk.duration_s < 6.0  # pieces, not one 5,000-character utterance
        if heard > 8.0:
            cancel.set()
    assert chunks >= 3
    assert heard < 16.0, "cancel must stop the stream at the next piece"


def test_cancel_before_start_gives_nothing(piper_voice):
    cancel = threading.Event()
    cancel.set()
    assert list(piper_voice.stream("Hello there.", cancel)) == []


def test_later_clauses_of_a_reply_need_not_be_split(piper_voice):
    text = "Then, after that, we can talk about something else."
    assert len({c.text for c in piper_voice.stream(text)}) == 2
    assert len({c.text for c in piper_voice.stream(text, split_first=False)}) == 1


def test_windows_grow_so_playback_never_waits(piper_voice):
    """Each window is at most WINDOW_GROWTH times the audio handed out before it in the
    same stream: while it is being decoded, that audio is still playing."""
    from voicebot.tts.piper import FIRST_WINDOW_FRAMES, WINDOW_GROWTH

    chunks = list(piper_voice.stream(
        "This sentence has no comma at all and it keeps going for quite a long while "
        "so that its audio needs several windows of the decoder to come out in full. "
        "Then a second sentence follows. And a third one, which ends the reply.",
        split_first=False))
    durations = [c.duration_s for c in chunks]
    assert len(durations) >= 3
    frame_s = 256 / piper_voice.sample_rate
    assert durations[0] <= FIRST_WINDOW_FRAMES * frame_s + 1e-6
    for i in range(1, len(durations)):
        assert durations[i] <= WINDOW_GROWTH * sum(durations[:i]) + 1e-6


def test_later_pieces_of_a_stream_need_few_windows(piper_voice):
    """The window schedule carries over from piece to piece: once a sentence has been
    handed out, the next one is not cut into short windows again."""
    chunks = list(piper_voice.stream(
        "The weather today is sunny and warm, with a light breeze from the west. "
        "Tomorrow will be cloudy, and it may rain in the evening."))
    texts = [c.text for c in chunks]
    assert texts.count("Tomorrow will be cloudy, and it may rain in the evening.") == 1
    assert chunks[-1].end_of_sentence


def test_split_decoder_runs_2d_convolutions(piper_voice):
    """The cut decoder's 1-D convolutions are rewritten as 2-D ones (faster kernels)."""
    import onnx

    from voicebot.models import resolve
    from voicebot.tts.piper_split import split_voice

    decoder = onnx.load(str(split_voice(resolve("piper-en-us-joe-medium"),
                                        "piper-en-us-joe-medium").decoder))
    weights = {i.name: len(i.dims) for i in decoder.graph.initializer}
    convs = [n for n in decoder.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert convs and all(weights[n.input[1]] == 4 for n in convs)


def _noiseless(voice: PiperVoice, parallel: int) -> PiperVoice:
    """A copy of ``voice`` without sampling noise (so runs compare sample by sample),
    decoding ``parallel`` windows at once."""
    from concurrent.futures import ThreadPoolExecutor

    copied = copy.copy(voice)
    copied.config = dataclasses.replace(voice.config, noise_scale=0.0, noise_w=0.0)
    copied._parallel = parallel
    copied._pool = ThreadPoolExecutor(parallel) if parallel > 1 else None
    return copied


def test_parallel_windows_give_the_samples_of_sequential_decoding(piper_voice):
    assert piper_voice.parallel_windows == 2  # the default on a CPU with 2+ cores
    text = ("The weather today is sunny and warm, with a light breeze from the west. "
            "Tomorrow will be cloudy. Remember to take an umbrella if you go out.")
    sequential = list(_noiseless(piper_voice, 1).stream(text))
    parallel = list(_noiseless(piper_voice, 3).stream(text))
    assert len(parallel) >= 4
    assert [(c.text, c.end_of_sentence) for c in parallel] == \
        [(c.text, c.end_of_sentence) for c in sequential]
    for a, b in zip(parallel, sequential, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_a_decoder_failure_in_a_parallel_window_reaches_the_caller(piper_voice):
    """An error in a pool thread is raised in the consumer, not lost with the thread."""
    runs = []

    class FailingDecoder:  # the third window's decoder call fails, as a crash would
        def __init__(self, session):
            self.session = session

        def run(self, *args):
            runs.append(1)
            if len(runs) == 3:
                raise RuntimeError("decoder crashed")
            return self.session.run(*args)

    voice = _noiseless(piper_voice, 2)
    voice._decoder = FailingDecoder(piper_voice._decoder)
    with pytest.raises(RuntimeError, match="decoder crashed"):
        list(voice.stream("One, two three four. Five six seven eight nine ten. Eleven."))


def test_a_voice_whose_flow_cannot_be_cut_still_streams(tmp_path, monkeypatch):
    """A flow this code cannot cut out (simulated by a wrong tensor name) leaves the
    two-part split: the voice still streams, with the flow run over whole sentences."""
    from voicebot.models import resolve
    from voicebot.tts import piper_split

    real_flow_cut = piper_split._flow_cut

    def broken_flow_cut(graph, latent):
        names = real_flow_cut(graph, latent)
        return {**names, "prior": "no such tensor"}

    monkeypatch.setattr(piper_split, "_flow_cut", broken_flow_cut)
    source = resolve("piper-en-us-joe-medium")  # the embedded voice, before the switch
    monkeypatch.setenv("VOICEBOT_MODELS_DIR", str(tmp_path))  # a conversion cache of its own
    split = piper_split.split_voice(source, "piper-en-us-joe-medium")
    assert split.flow is None and split.front.name == "front.onnx"
    assert split.front.parent.is_relative_to(tmp_path)
    voice = PiperVoice(source, voice_id="piper-en-us-joe-medium", warm_up=False)
    assert voice.streams_within_sentences and voice._flow is None
    chunks = list(voice.stream("This sentence is long enough for several windows."))
    assert len(chunks) >= 2 and all(np.isfinite(c.samples).all() for c in chunks)
