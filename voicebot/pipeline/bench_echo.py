"""`voicebot bench echo`: echo cancellation of the bot's own voice in a simulated room.

Everything runs in memory, driven the way the live app drives it: the bot's replies
(real Piper speech, noise off) are "played" in 5 ms callback blocks at 48 kHz into a
``PlaybackReference`` with jittered DAC timestamps; ``voicebot.audio.room_sim`` makes
the microphone signal (20-150 ms delay, a decaying impulse response, a saturating and
clipping loudspeaker, up to ±100 ppm clock drift, a noise floor, the echo as loud as the
user) and it is "captured" in 10 ms blocks with jittered ADC timestamps; the capture
pump's ``EchoStream`` pairs and cancels every 10 ms. Every random choice is seeded.

Per reply, twice:

* the bot alone: echo return loss enhancement after the first second (target >= 25 dB)
  and hands-free's voice activity rules (Silero VAD, ``VoiceActivity()``) on the cleaned
  signal: every speech start is a self-interruption (target 0); the same rules on the
  uncancelled microphone show what the headset switch protects against today. Whisper
  (tiny.en) transcribes the cleaned signal: words of the reply that come through
  (target 0).
* the user talking over the reply (pocketsphinx's recordings of real speech, starting
  0.8-2 s in): barge-in counts when the first speech start comes within 300 ms of the
  user's speech onset (target 95 % of replies). The onset is where the first word starts
  (``room_sim.speech_onset``: 10 dB over the recording's hiss, for 30 ms); until
  2026-12-07 it was the first 10 ms within 20 dB of the speech level, which the hiss of
  four of the ten recordings reached 130-260 ms before the first word, and those replies
  counted as late whatever the detector did. Same detector, seeds 0/1/2, before -> after
  that fix: paused within 300 ms 13/9/12 -> 17/16/17 of 20, within 150 ms 7/7/9 ->
  9/8/13, the VAD on the user alone (no echo) within 300 ms 12/12/12 -> 19/19/18. The
  live path adds up to one 10 ms AEC frame and one capture pump period to that, and
  hands-free's 30 ms poll.

Hands-free now *pauses* the reply on a quicker onset (``hands_free.pause_onset()``, 96
ms) and lets the words decide (``voicebot.text.backchannel``), so the same signals are
also scored for that: the pause's latency from the user's onset (within 150 ms and
300 ms), false pauses on the bot alone (quick-rule starts; those the full rule also
starts are the old self-interruptions, which now wait for Whisper), and, with Whisper,
how many of those Whisper hears words in that are not a backchannel: the replies the bot
would still cut itself off in (``self_interruptions_after_words``, target 0).

The canceller's CPU cost is its own thread time (resampling of the reference, pairing,
AEC3) per second of audio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

REPLIES = (
    "Sure, here is a quick summary of what I found about the weather for tomorrow.",
    "The train leaves at seven fifteen from platform nine, so you have plenty of time.",
    "I think the best way to start is to write down everything you already know.",
    "Paris is the capital of France, and it is famous for its museums and cafes.",
    "A week has seven days, and most people work on five of them.",
    "You could try a short walk after lunch; it often helps with the afternoon slump.",
    "Cats sleep for around fifteen hours a day, which is more than most other pets.",
    "The recipe needs two eggs, a cup of flour and a little bit of milk.",
    "If you water the plant once a week, it should stay healthy through the winter.",
    "The meeting was moved to Thursday afternoon at three o'clock in the small room.",
    "Light from the sun takes about eight minutes to reach the earth.",
    "I would recommend reading the first chapter again before the next lesson.",
    "The museum opens at ten in the morning and closes at six in the evening.",
    "Your package should arrive on Monday, unless the weather delays the delivery.",
    "Mountains are colder at the top because the air there is thinner.",
    "To reset the router, hold the small button on the back for ten seconds.",
    "Bananas are a good source of potassium and they are easy to carry around.",
    "The library has a quiet room upstairs where you can study without noise.",
    "Remember to bring your umbrella, because rain is expected this evening.",
    "The concert starts at eight, so we should leave the house by seven thirty.",
)
RATE = 16_000
BARGE_IN_WINDOW_S = 0.3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bench echo")
    group.add_argument("--echo-replies", type=int, default=len(REPLIES),
                       help="replies to play (each twice: alone and talked over)")
    group.add_argument("--echo-seed", type=int, default=0, help="seed of every random choice")
    group.add_argument("--echo-no-whisper", action="store_true",
                       help="skip transcribing the cleaned signal with Whisper")


def _replies(count: int) -> list[tuple[str, np.ndarray]]:
    import soxr

    from voicebot.tts.base import collect
    from voicebot.tts.voices import load_voice

    voice = load_voice()
    if hasattr(voice, "set_noise"):
        voice.set_noise(0.0, 0.0)  # the same speech every run
    replies = []
    for i in range(count):
        text = REPLIES[i % len(REPLIES)]
        samples, rate = collect(voice.stream(text))
        replies.append((text, soxr.resample(samples, rate, RATE).astype(np.float32)))
    return replies


def _users() -> list[np.ndarray]:
    from voicebot.asr.audio_input import read_audio_file
    from voicebot.asr.evaluate import pocketsphinx_testdata

    users = [read_audio_file(u.audio) for u in pocketsphinx_testdata()]
    if not users:
        raise SystemExit("bench echo needs Debian's pocketsphinx-testdata recordings")
    return users


def _cancel(far: np.ndarray, mic: np.ndarray, room, timing) -> tuple[np.ndarray, dict]:
    from voicebot.audio.echo import EchoCanceller, EchoStream, Timeline
    from voicebot.audio.room_sim import run_duplex

    stream = EchoStream(EchoCanceller(RATE), Timeline(RATE))
    cleaned = run_duplex(far, mic, RATE, stream, room, timing)
    return cleaned, stream.stats()


def _words(text: str) -> list[str]:
    from voicebot.text.scoring import words_for_scoring

    return words_for_scoring(text)


def _segments(audio: np.ndarray, vad) -> list[tuple[float, float]]:
    """(start, end) seconds of each turn hands-free's default rules would hear."""
    from voicebot.audio.vad import FRAME, VadEvent, VoiceActivity

    activity = VoiceActivity()
    vad.reset()
    segments, start = [], None
    for i, probability in enumerate(vad.probabilities(audio)):
        event = activity.update(probability)
        if event is VadEvent.SPEECH_START:
            start = (i + 1) * FRAME / RATE
        elif event is VadEvent.SPEECH_END and start is not None:
            segments.append((start, (i + 1) * FRAME / RATE))
            start = None
    if start is not None:
        segments.append((start, len(audio) / RATE))
    return segments


def _within(latencies: list[float | None], seconds: float) -> int:
    return sum(1 for lat in latencies if lat is not None and lat <= seconds)


def run(args: argparse.Namespace) -> dict:
    from voicebot.audio.room_sim import (
        Room,
        Timing,
        active_rms,
        erle_db,
        simulate,
        speech_onset,
        speech_starts,
    )
    from voicebot.audio.vad import SileroVad
    from voicebot.pipeline.hands_free import pause_onset

    seed = getattr(args, "echo_seed", 0)
    count = max(1, getattr(args, "echo_replies", len(REPLIES)))
    started = time.perf_counter()
    replies = _replies(count)
    users = _users()
    vad = SileroVad()
    rng = np.random.default_rng(seed)
    erles, self_starts, raw_starts, latencies, clean_latencies = [], [], [], [], []
    early, cpu, audio_s, realigns = 0, 0.0, 0.0, 0
    cleaned_alone = []
    false_pauses, pause_latencies, pauses_early = 0, [], 0
    rooms = []
    for i, (_text, reply) in enumerate(replies):
        room = Room(delay_ms=float(rng.uniform(20, 150)), rt60_ms=float(rng.uniform(150, 400)),
                    drr_db=float(rng.uniform(0, 6)), drift_ppm=float(rng.uniform(-100, 100)),
                    seed=seed * 1000 + i)
        timing = Timing(stamp_error_s=float(rng.uniform(-0.005, 0.010)), seed=seed * 1000 + i)
        rooms.append({"delay_ms": round(room.delay_ms), "drift_ppm": round(room.drift_ppm),
                      "rt60_ms": round(room.rt60_ms), "drr_db": round(room.drr_db, 1)})
        user = users[i % len(users)]
        far = np.concatenate([reply, np.zeros(RATE // 2, np.float32)])  # the room's tail
        # The bot alone, its echo as loud as this reply's user will be.
        mic, echo = simulate(far, room, RATE, echo_rms=active_rms(user))
        cleaned, stats = _cancel(far, mic, room, timing)
        erles.append(erle_db(mic, cleaned, echo, RATE))
        self_starts.append(len(speech_starts(cleaned, vad)))
        false_pauses += len(speech_starts(cleaned, vad, pause_onset()))
        raw_starts.append(len(speech_starts(mic, vad)))
        cleaned_alone.append(cleaned)
        cpu += stats["cpu_seconds"]
        audio_s += len(cleaned) / RATE
        realigns += stats["realigns"]
        # The user talks over the reply.
        latest = max(0.8, len(reply) / RATE - 0.6)
        onset = float(rng.uniform(0.8, min(2.0, latest)))
        place = round(RATE * (onset - speech_onset(user, RATE)))
        far_long = np.concatenate([far, np.zeros(max(0, place + len(user) - len(far)),
                                                 np.float32)])
        near = np.zeros(len(far_long), np.float32)
        near[place:place + len(user)] = user[:len(near) - place]
        mic, _ = simulate(far_long, room, RATE, near=near, echo_to_user_db=0.0)
        cleaned, stats = _cancel(far_long, mic, room, timing)
        cpu += stats["cpu_seconds"]
        audio_s += len(cleaned) / RATE
        starts = speech_starts(cleaned, vad)
        early += sum(1 for s in starts if s < onset)
        after = [s - onset for s in starts if s >= onset]
        latencies.append(after[0] if after else None)
        pauses = speech_starts(cleaned, vad, pause_onset())
        pauses_early += sum(1 for s in pauses if s < onset)
        after = [s - onset for s in pauses if s >= onset]
        pause_latencies.append(after[0] if after else None)
        # The same rules on the user's speech alone (no echo, no canceller): the VAD's
        # own delay, which 300 ms must also cover.
        alone = [s - onset for s in speech_starts(near, vad) if s >= onset]
        clean_latencies.append(alone[0] if alone else None)
    detected = [lat for lat in latencies if lat is not None and lat <= BARGE_IN_WINDOW_S]
    clean_in_time = [lat for lat in clean_latencies
                     if lat is not None and lat <= BARGE_IN_WINDOW_S]
    extra = [lat - alone for lat, alone in zip(latencies, clean_latencies, strict=True)
             if lat is not None and alone is not None]
    result = {
        "aec": "pywebrtc-audio 0.2.0 (WebRTC AEC3)",
        "replies": count,
        "seed": seed,
        "reply_seconds": round(sum(len(r) for _, r in replies) / RATE, 1),
        "erle_db_median": round(statistics.median(erles), 1),
        "erle_db_min": round(min(erles), 1),
        "erle_target_db": 25,
        "self_interruptions": sum(self_starts),
        "self_interruptions_without_aec": sum(raw_starts),
        "barge_in_detected": len(detected),
        "barge_in_rate": round(len(detected) / count, 3),
        "barge_in_latency_ms_median": (round(1000 * statistics.median(detected))
                                       if detected else None),
        "barge_in_latency_ms_max": round(1000 * max(detected)) if detected else None,
        "barge_in_missed_or_late": count - len(detected),
        "speech_starts_before_user": early,
        "barge_in_latencies_ms": [None if lat is None else round(1000 * lat)
                                  for lat in latencies],
        # Without any echo the same VAD rules detect the user this fast (or slow):
        "user_alone_within_300ms": len(clean_in_time),
        "user_alone_latencies_ms": [None if lat is None else round(1000 * lat)
                                    for lat in clean_latencies],
        "barge_in_extra_ms_median": round(1000 * statistics.median(extra)) if extra else None,
        "pause_within_150ms": _within(pause_latencies, 0.15),
        "pause_within_300ms": _within(pause_latencies, BARGE_IN_WINDOW_S),
        "pause_latency_ms_median": (round(1000 * statistics.median(
            [lat for lat in pause_latencies if lat is not None]))
            if any(lat is not None for lat in pause_latencies) else None),
        "pause_latencies_ms": [None if lat is None else round(1000 * lat)
                               for lat in pause_latencies],
        "pauses_before_user": pauses_early,
        "false_pauses": false_pauses,
        "false_pauses_confirmed": sum(self_starts),
        "aec_cpu_percent_of_core": round(100 * cpu / max(audio_s, 1e-9), 2),
        "realigns": realigns,
        "rooms": rooms,
    }
    if not getattr(args, "echo_no_whisper", False):
        result.update(_whisper(replies, cleaned_alone))
        result.update(_settled(cleaned_alone, vad))
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _whisper(replies: list[tuple[str, np.ndarray]], cleaned: list[np.ndarray]) -> dict:
    """Words of each reply that Whisper still hears in the cleaned microphone."""
    from voicebot.asr.factory import create_recognizer

    heard, leaked, transcripts = 0, 0, []
    for (text, _), audio in zip(replies, cleaned, strict=True):
        recognizer = create_recognizer("whisper", "whisper-tiny-en", nbest=1, device="cpu",
                                       streaming=False)
        recognizer.feed(audio)
        hyps = recognizer.finish(1)
        said = hyps[0].text if hyps else ""
        words = _words(said)
        reply_words = set(_words(text))
        heard += len(words)
        leaked += sum(1 for w in words if w in reply_words)
        if said.strip():
            transcripts.append(said.strip())
    return {"whisper_words_heard": heard, "whisper_reply_words_leaked": leaked,
            "whisper_transcripts": transcripts[:10]}


def _settled(cleaned: list[np.ndarray], vad) -> dict:
    """What the conversation makes of each confirmed false pause: Whisper hears the turn
    hands-free would record (its 0.5 s of preroll included); words that are not a
    backchannel would interrupt the bot's own reply."""
    from voicebot.asr.factory import create_recognizer
    from voicebot.pipeline.hands_free import PREROLL_S
    from voicebot.text.backchannel import lets_reply_go_on

    interrupting, heard = 0, []
    for audio in cleaned:
        for start, end in _segments(audio, vad):
            recognizer = create_recognizer("whisper", "whisper-tiny-en", nbest=1,
                                           device="cpu", streaming=False)
            recognizer.feed(audio[max(0, round((start - PREROLL_S) * RATE)):round(end * RATE)])
            hyps = recognizer.finish(1)
            said = hyps[0].text.strip() if hyps else ""
            heard.append(said)
            interrupting += not lets_reply_go_on(said)
    return {"self_interruptions_after_words": interrupting,
            "false_pause_transcripts": heard}
