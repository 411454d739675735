"""A simulated room between the loudspeaker and the microphone, for echo tests and benches.

What the bot plays (``far``) reaches the microphone through a small loudspeaker and a
room: the speaker compresses and clips a little (a soft ``tanh`` curve, then a hard clip),
its clock runs slightly off the microphone's (``drift_ppm``, applied by resampling), the
sound arrives ``delay_ms`` later through a decaying impulse response (a direct path, a
few early reflections and an exponentially decaying diffuse tail ``drr_db`` below the
direct sound, drawn from ``seed``),
and the microphone adds a low noise floor. The user's own speech (``near``) is added on
top. ``echo_gain`` is chosen per call by :func:`simulate` so that the echo is as loud as
the user (``echo_to_user_db`` = 0), the hard case for a double-talk detector.

Everything is at one rate (16 kHz in the tests) and deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr


@dataclass(frozen=True)
class Room:
    delay_ms: float = 60.0  # speaker -> microphone, acoustic plus converter latency
    rt60_ms: float = 250.0  # the diffuse tail decays by 60 dB in this time
    drr_db: float = 3.0  # direct path over the reverberant tail (a laptop at arm's length)
    ir_ms: float = 250.0  # length of the simulated impulse response
    drive: float = 1.6  # loudspeaker soft saturation: tanh(drive x) / tanh(drive)
    clip: float = 0.9  # then a hard clip at this level (relative to full scale)
    drift_ppm: float = 40.0  # speaker clock faster than the microphone's by this much
    noise_dbfs: float = -65.0  # microphone noise floor (RMS)
    seed: int = 0

    def impulse_response(self, rate: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        n = max(1, round(rate * self.ir_ms / 1000))
        t = np.arange(n) / rate
        decay = np.exp(-6.91 * t / (self.rt60_ms / 1000))  # 6.91 = ln(1000): -60 dB
        tail = rng.standard_normal(n) * decay
        for _ in range(4):  # early reflections, 2-20 ms after the direct sound
            k = int(rng.integers(round(0.002 * rate), round(0.020 * rate)))
            tail[k] += float(rng.uniform(-0.6, 0.6)) * np.sqrt(np.sum(tail ** 2) / 4)
        tail[0] = 0.0
        # Scale the reverberation to ``drr_db`` below the direct path's energy (1).
        ir = tail * np.sqrt(10 ** (-self.drr_db / 10) / np.sum(tail ** 2))
        ir[0] = 1.0  # direct path
        delay = round(rate * self.delay_ms / 1000)
        return np.concatenate([np.zeros(delay), ir]).astype(np.float32)

    def loudspeaker(self, far: np.ndarray, rate: int) -> np.ndarray:
        """What the loudspeaker radiates: saturated, clipped, on its own clock."""
        out = np.tanh(self.drive * far) / np.tanh(self.drive)
        out = np.clip(out, -self.clip, self.clip).astype(np.float32)
        if self.drift_ppm:
            # A faster speaker clock plays the same samples in less time: as heard on the
            # microphone's clock the signal is resampled to fewer samples.
            out = soxr.resample(out, rate * (1 + self.drift_ppm * 1e-6), rate, quality="VHQ")
        return out.astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def simulate(far: np.ndarray, room: Room, rate: int, near: np.ndarray | None = None,
             echo_to_user_db: float = 0.0, echo_rms: float = 0.05
             ) -> tuple[np.ndarray, np.ndarray]:
    """The microphone signal for ``far`` played in ``room`` (and ``near`` spoken in it).

    Returns ``(mic, echo)``: both as long as ``far``; ``echo`` is the echo alone (for
    ERLE). The echo is scaled to ``echo_rms`` over its active part, or, with ``near``, to
    ``echo_to_user_db`` relative to the user's active level.
    """
    far = np.asarray(far, dtype=np.float32)
    n = len(far)
    echo = np.convolve(room.loudspeaker(far, rate), room.impulse_response(rate))[:n]
    echo = np.pad(echo, (0, n - len(echo)))
    target = echo_rms
    if near is not None and len(near):
        near = np.pad(np.asarray(near, np.float32), (0, max(0, n - len(near))))[:n]
        target = active_rms(near) * 10 ** (echo_to_user_db / 20)
    level = active_rms(echo)
    if level > 0:
        echo = echo * (target / level)
    rng = np.random.default_rng(room.seed + 1)
    noise = rng.standard_normal(n) * 10 ** (room.noise_dbfs / 20)
    mic = echo + noise + (near if near is not None and len(near) else 0.0)
    return mic.astype(np.float32), echo.astype(np.float32)


def active_rms(x: np.ndarray, frame: int = 320, floor_db: float = -30.0) -> float:
    """RMS over the frames within ``floor_db`` of the loudest (speech, not its pauses)."""
    x = np.asarray(x, dtype=np.float64)
    frames = len(x) // frame
    if frames == 0:
        return rms(x)
    energy = np.mean(np.square(x[:frames * frame]).reshape(frames, frame), axis=1)
    peak = float(energy.max())
    if peak <= 0:
        return 0.0
    active = energy[energy >= peak * 10 ** (floor_db / 10)]
    return float(np.sqrt(active.mean()))


@dataclass(frozen=True)
class Timing:
    """How the two audio callbacks and the capture pump see time in :func:`run_duplex`."""

    reference_rate: int = 48_000  # the player's device rate
    play_block_s: float = 0.005  # the player's callback block
    capture_block_s: float = 0.010
    output_latency_s: float = 0.040  # published this long before it reaches the DAC
    input_latency_s: float = 0.010  # captured audio reaches the callback this much later
    pump_s: float = 0.010  # the capture pump's period
    jitter_s: float = 0.002  # random error of every callback timestamp
    stamp_error_s: float = 0.005  # a constant misreport (DAC times this much too late)
    seed: int = 0


def run_duplex(far: np.ndarray, mic: np.ndarray, rate: int, stream, room: Room,
               timing: Timing = Timing()) -> np.ndarray:
    """Play ``far`` and record ``mic`` (both at ``rate``, as :func:`simulate` made them)
    through an ``EchoStream`` the way the player, the capture and its pump drive it.

    Time runs on the microphone's clock (``mic`` sample ``m`` is at ``m / rate``); the
    speaker's clock is ``room.drift_ppm`` fast, as in :func:`simulate`. Returns the
    cleaned microphone (as long as ``mic`` minus at most a frame).
    """
    from voicebot.audio.echo import PlaybackReference

    rng = np.random.default_rng(timing.seed)
    far_dev = np.asarray(far, np.float32)
    if timing.reference_rate != rate:
        far_dev = soxr.resample(far_dev, rate, timing.reference_rate).astype(np.float32)
    reference = PlaybackReference(timing.reference_rate)
    stream.set_reference(reference)
    speaker_rate = timing.reference_rate * (1 + room.drift_ppm * 1e-6)
    play_block = round(timing.reference_rate * timing.play_block_s)
    cap_block = round(rate * timing.capture_block_s)
    played = captured = 0
    out = []
    steps = int(len(mic) / rate / timing.pump_s) + 2
    for step in range(1, steps + 1):
        now = step * timing.pump_s
        # The player's callback runs ahead of the DAC by the output latency.
        while played / speaker_rate <= now + timing.output_latency_s:
            block = far_dev[played:played + play_block]
            block = np.pad(block, (0, play_block - len(block)))
            dac = (played / speaker_rate + timing.stamp_error_s
                   + rng.normal(0, timing.jitter_s))
            reference.publish(block, dac)
            played += play_block
        # The capture's callback gets each block once it is complete plus the latency.
        first = captured
        while (captured + cap_block) / rate + timing.input_latency_s <= now \
                and captured + cap_block <= len(mic):
            stream.mic_timeline.stamp(captured, captured / rate + rng.normal(0, timing.jitter_s))
            captured += cap_block
        if captured > first:
            out.append(stream.process(mic[first:captured], captured))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def erle_db(mic: np.ndarray, cleaned: np.ndarray, echo: np.ndarray, rate: int,
            skip_s: float = 1.0, floor_db: float = -30.0, frame_s: float = 0.02) -> float:
    """Echo return loss enhancement: microphone over cleaned energy, in dB.

    Counted after ``skip_s`` (the canceller's convergence) over the frames where the echo
    is within ``floor_db`` of its loudest (the pauses of the reply hold only noise)."""
    n = min(len(mic), len(cleaned), len(echo))
    frame = round(rate * frame_s)
    start = round(rate * skip_s) // frame
    frames = n // frame
    if frames <= start:
        raise ValueError("too little audio for ERLE after the convergence time")

    def energy(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x[:frames * frame], np.float64).reshape(frames, frame)
        return np.sum(np.square(x), axis=1)[start:]

    e_echo, e_mic, e_out = energy(echo), energy(mic), energy(cleaned)
    active = e_echo >= e_echo.max() * 10 ** (floor_db / 10)
    return float(10 * np.log10(e_mic[active].sum() / max(e_out[active].sum(), 1e-20)))


def speech_starts(audio: np.ndarray, vad, activity=None) -> list[float]:
    """Seconds (from the start of 16 kHz ``audio``) at which hands-free's voice activity
    rules would start a turn: ``vad`` a SileroVad, ``activity`` a VoiceActivity (the
    defaults hands-free uses when None)."""
    from voicebot.audio.vad import FRAME, RATE, VadEvent, VoiceActivity

    activity = activity or VoiceActivity()
    activity.reset()
    vad.reset()
    starts = []
    for i, probability in enumerate(vad.probabilities(audio)):
        if activity.update(probability) is VadEvent.SPEECH_START:
            starts.append((i + 1) * FRAME / RATE)
    return starts


def speech_onset(audio: np.ndarray, rate: int, below_db: float = -20.0,
                 frame_s: float = 0.01, above_floor_db: float = 10.0,
                 sustain: int = 3) -> float:
    """Seconds to where the words start: the first of ``sustain`` frames in a row within
    ``below_db`` of the active speech level and ``above_floor_db`` over the recording's
    noise floor (its 10th-percentile frame).

    The floor matters: four of pocketsphinx's ten test recordings carry hiss or breath
    only 19-22 dB under the speech, which "within 20 dB of the speech" alone took for the
    onset 130-260 ms before the first word (a listener, and Silero on the clean
    recording, put it where this finds it); one 10 ms blip is not a word either."""
    frame = round(rate * frame_s)
    frames = len(audio) // frame
    if frames == 0:
        return 0.0
    x = np.asarray(audio[:frames * frame], np.float64).reshape(frames, frame)
    level_db = 10 * np.log10(np.mean(np.square(x), axis=1) + 1e-20)
    speech_db = 20 * np.log10(max(active_rms(audio), 1e-10))
    floor_db = float(np.percentile(level_db, 10))
    loud = level_db >= max(speech_db + below_db, floor_db + above_floor_db)
    run = np.convolve(loud.astype(int), np.ones(sustain, int), mode="valid")
    starts = np.flatnonzero(run == sustain)
    if len(starts):
        return float(starts[0] * frame_s)
    louder = np.flatnonzero(loud)  # shorter than ``sustain`` frames: its first frame
    return float(louder[0] * frame_s) if len(louder) else 0.0
