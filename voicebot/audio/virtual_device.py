"""A virtual microphone and speaker: real PortAudio devices for tests and demos.

A private PulseAudio daemon runs under a temporary root with two devices:

* ``vmic`` - a ``module-pipe-source``. A feeder thread writes 10 ms blocks of s16le audio
  into its FIFO at real-time pace: silence normally, and the samples passed to
  :meth:`VirtualAudio.inject` when a test or demo "speaks" into the microphone.
* ``vspeaker`` - a ``module-pipe-sink``. A reader thread drains its FIFO continuously and
  keeps what was played, stamped with ``time.monotonic()``, so a test can check what the app
  played and when (:meth:`VirtualAudio.speaker_audio`).

PortAudio reaches both through ALSA's ``pulse`` plugin: ``sounddevice.query_devices()``
lists ``vmic``, ``vspeaker``, ``pulse`` and ``default`` under the ALSA host API.

The client side is configured through environment variables (``PULSE_SERVER``,
``ALSA_CONFIG_PATH``, ...). PortAudio reads the device list once, when it initialises, so
:meth:`VirtualAudio.start` sets the variables and then re-initialises PortAudio inside this
process; other processes get the variables from :meth:`VirtualAudio.client_env`.

Use it as a context manager::

    with VirtualAudio() as va:
        capture = Capture(device="vmic")      # any voicebot.audio user, by device name
        va.inject(samples, 16000)             # the "user" speaks
        ...
        played, t0 = va.speaker_audio()       # what the app said, from monotonic time t0

or from a shell, for demos (prints the variables to export in another terminal)::

    python -m voicebot.audio.virtual_device --loop speech.wav --record spoken.wav

Needs the Debian packages ``pulseaudio``, ``pulseaudio-utils`` (pactl) and
``libasound2-plugins`` (the ALSA pulse plugin) besides ``libportaudio2``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from voicebot.audio import portaudio_life

log = logging.getLogger(__name__)

MIC_NAME = "vmic"
SPEAKER_NAME = "vspeaker"
SPEAKER_RATE = 48_000
SPEAKER_CHANNELS = 2
_FEED_BLOCK_S = 0.010
# Linux lets a pipe shrink to one page. A small pipe bounds how much stale audio can wait
# in the microphone FIFO (4 KiB of 16 kHz s16le mono is 128 ms).
_F_SETPIPE_SZ = 1031
_MIC_PIPE_BYTES = 4096
LAUNCH_TRIES = 3  # pulseaudio starts (see VirtualAudio._launch_daemon)

_CLIENT_VARS = ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH", "PULSE_SERVER",
                "PULSE_CLIENTCONFIG", "PULSE_COOKIE", "ALSA_CONFIG_PATH")


class VirtualAudioError(RuntimeError):
    """The virtual devices could not be started (or PulseAudio is not installed)."""


class _ExitedAtStartError(Exception):
    """pulseaudio ended before its devices appeared; the message is its log."""


def pulseaudio_available() -> bool:
    return shutil.which("pulseaudio") is not None and shutil.which("pactl") is not None


@dataclass
class _Injection:
    samples: np.ndarray  # int16, already at the microphone's rate and channel count
    position: int = 0


class VirtualAudio:
    """A private PulseAudio with a pipe-source microphone and a pipe-sink speaker."""

    def __init__(self, mic_rate: int = 16_000, mic_channels: int = 1,
                 speaker_seconds: float = 120.0, root: Path | None = None) -> None:
        self.mic_rate = mic_rate
        self.mic_channels = mic_channels
        self._given_root = root
        self.root: Path | None = None
        self._daemon: subprocess.Popen | None = None
        self._saved_env: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mic_fd: int | None = None
        self._spk_fd: int | None = None
        self._injections: collections.deque[_Injection] = collections.deque()
        self._lock = threading.Lock()
        self._mic_idle = threading.Event()
        self._mic_idle.set()
        # The speaker recording: a preallocated ring of frames plus the monotonic time of
        # the newest frame, enough to map any frame back to the moment it was played.
        self._spk_capacity = int(speaker_seconds * SPEAKER_RATE)
        self._spk = np.zeros((self._spk_capacity, SPEAKER_CHANNELS), dtype=np.int16)
        self._spk_frames = 0
        self._spk_last_time = 0.0
        self.daemon_log = ""

    # ----- life cycle -------------------------------------------------------------
    def __enter__(self) -> VirtualAudio:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.poll() is None

    def client_env(self) -> dict[str, str]:
        """Variables that point PulseAudio and ALSA clients at this daemon."""
        if self.root is None:
            raise VirtualAudioError("the virtual audio devices are not started")
        root = self.root
        return {
            "XDG_RUNTIME_DIR": str(root / "run"),
            "PULSE_RUNTIME_PATH": str(root / "run" / "pulse"),
            "PULSE_STATE_PATH": str(root / "state"),
            "PULSE_SERVER": f"unix:{root / 'native'}",
            "PULSE_CLIENTCONFIG": str(root / "client.conf"),
            "PULSE_COOKIE": str(root / "cookie"),
            "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{root / 'asoundrc'}",
        }

    def start(self, timeout: float = 10.0) -> None:
        if not pulseaudio_available():
            raise VirtualAudioError("pulseaudio/pactl not found: install the Debian packages "
                                    "pulseaudio, pulseaudio-utils and libasound2-plugins")
        if self.root is None:
            self.root = (self._given_root or Path(tempfile.mkdtemp(prefix="voicebot-vaudio-")))
        self._write_config()
        self._launch_daemon(timeout)
        self._start_feeders()
        for key, value in self.client_env().items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        portaudio_life.reinitialize()

    def stop(self) -> None:
        """Stop the daemon and the threads, remove the root, restore the environment."""
        self._stop_daemon_and_feeders()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self._saved_env:
            self._saved_env = {}
            with contextlib.suppress(Exception):
                portaudio_life.reinitialize()
        if self.root is not None and self._given_root is None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def kill_daemon(self) -> None:
        """Terminate PulseAudio: the devices vanish under any open stream (fault injection)."""
        daemon, self._daemon = self._daemon, None
        if daemon is None:
            return
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=3)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(timeout=3)
        if daemon.stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                self.daemon_log = daemon.stderr.read().decode("utf-8", "replace")[-4000:]
                daemon.stderr.close()

    def restart(self, timeout: float = 10.0) -> None:
        """Start the daemon again after :meth:`kill_daemon`: same root, same devices, the
        environment and PortAudio left as they are, as when a user's sound server restarts
        under a running app. Re-initialising PortAudio here (what :meth:`stop` and
        :meth:`start` do) would race the app's own reopening of the devices: a stream it
        had just reopened died under the re-initialisation (CI, stop 28)."""
        if self.root is None:
            self.start(timeout)
            return
        self._stop_daemon_and_feeders()
        self._write_config()
        self._launch_daemon(timeout)
        self._start_feeders()

    def _stop_daemon_and_feeders(self) -> None:
        self._stop.set()
        self.kill_daemon()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = []
        for fd in (self._mic_fd, self._spk_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._mic_fd = self._spk_fd = None

    def _start_feeders(self) -> None:
        self._stop.clear()
        self._open_fifos()
        self._threads = [threading.Thread(target=self._feed_mic, name="vaudio-mic", daemon=True),
                         threading.Thread(target=self._drain_speaker, name="vaudio-speaker",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()

    # ----- microphone -----------------------------------------------------------
    def inject(self, samples: np.ndarray, sample_rate: int) -> float:
        """Queue audio to be "spoken" into the microphone; returns when it will start.

        ``samples`` is float (-1..1) or int16, mono or (frames, channels); it is resampled
        and mixed to the microphone's format. The returned value is the estimated
        ``time.monotonic()`` at which its first frame enters the microphone.
        """
        audio = np.asarray(samples)
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        audio = audio.astype(np.float32, copy=False)
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        if sample_rate != self.mic_rate:
            audio = soxr.resample(audio, sample_rate, self.mic_rate, quality="HQ")
        pcm = (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)
        pcm = np.repeat(pcm[:, None], self.mic_channels, axis=1)
        with self._lock:
            queued = sum(len(i.samples) - i.position for i in self._injections)
            self._injections.append(_Injection(pcm))
            self._mic_idle.clear()
        return time.monotonic() + queued / self.mic_rate

    def wait_mic_idle(self, timeout: float | None = None) -> bool:
        """Wait until everything injected has been written into the microphone."""
        return self._mic_idle.wait(timeout)

    def _feed_mic(self) -> None:
        block = max(1, round(self.mic_rate * _FEED_BLOCK_S))
        silence = np.zeros((block, self.mic_channels), dtype=np.int16)
        next_time = time.monotonic()
        while not self._stop.is_set():
            chunk = self._next_mic_block(block, silence)
            try:
                os.write(self._mic_fd, chunk.tobytes())
            except BlockingIOError:
                pass  # nobody is reading and the pipe is full: drop, like a real mic
            except OSError:
                if self._stop.is_set() or not self.running:
                    return
            next_time += _FEED_BLOCK_S
            delay = next_time - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -0.5:  # fell far behind (suspended); do not burst to catch up
                next_time = time.monotonic()

    def _next_mic_block(self, block: int, silence: np.ndarray) -> np.ndarray:
        with self._lock:
            if not self._injections:
                self._mic_idle.set()
                return silence
            out = silence.copy()
            filled = 0
            while filled < block and self._injections:
                current = self._injections[0]
                take = min(block - filled, len(current.samples) - current.position)
                out[filled:filled + take] = current.samples[current.position:
                                                            current.position + take]
                current.position += take
                filled += take
                if current.position >= len(current.samples):
                    self._injections.popleft()
            return out

    # ----- speaker --------------------------------------------------------------
    def _drain_speaker(self) -> None:
        frame_bytes = 2 * SPEAKER_CHANNELS
        pending = b""
        while not self._stop.is_set():
            try:
                # Sleep in select until the sink writes (no busy polling), waking now and
                # then to notice stop().
                if not select.select([self._spk_fd], [], [], 0.05)[0]:
                    continue
                data = os.read(self._spk_fd, 8192)
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                return
            if not data:  # the daemon closed its end (stopped or killed)
                self._stop.wait(0.01)
                continue
            now = time.monotonic()
            data = pending + data
            usable = len(data) - len(data) % frame_bytes
            pending = data[usable:]
            frames = np.frombuffer(data[:usable], dtype=np.int16).reshape(-1, SPEAKER_CHANNELS)
            self._store_speaker(frames, now)

    def _store_speaker(self, frames: np.ndarray, now: float) -> None:
        with self._lock:
            n = len(frames)
            start = self._spk_frames % self._spk_capacity
            first = min(n, self._spk_capacity - start)
            self._spk[start:start + first] = frames[:first]
            self._spk[:n - first] = frames[first:]
            self._spk_frames += n
            self._spk_last_time = now

    def speaker_frames(self) -> int:
        """How many frames the speaker has played since start (a position to read from)."""
        with self._lock:
            return self._spk_frames

    def speaker_audio(self, since_frame: int = 0) -> tuple[np.ndarray, float]:
        """What the speaker played from ``since_frame`` on, as float32 mono at 48 kHz.

        Also returns the ``time.monotonic()`` at which the first returned frame was played
        (estimated from when the pipe sink handed it over).
        """
        with self._lock:
            total = self._spk_frames
            since = max(since_frame, total - self._spk_capacity)
            n = total - since
            idx = np.arange(since, total) % self._spk_capacity
            frames = self._spk[idx]
            first_time = self._spk_last_time - n / SPEAKER_RATE
        mono = frames.astype(np.float32).mean(axis=1) / 32768.0
        return mono, first_time

    # ----- set-up details -------------------------------------------------------
    def _write_config(self) -> None:
        root = self.root
        assert root is not None
        (root / "run" / "pulse").mkdir(parents=True, exist_ok=True)
        os.chmod(root / "run", 0o700)
        (root / "state").mkdir(exist_ok=True)
        # A FIFO left behind by a crash makes module-pipe-source fail ("File exists") while
        # the daemon keeps running without the device, so always start from fresh ones.
        for stale in ("mic.fifo", "spk.fifo", "native"):
            with contextlib.suppress(FileNotFoundError):
                (root / stale).unlink()
        (root / "vaudio.pa").write_text(
            f"load-module module-native-protocol-unix socket={root / 'native'} "
            "auth-anonymous=1 auth-cookie-enabled=0\n"
            f"load-module module-pipe-source source_name={MIC_NAME} file={root / 'mic.fifo'} "
            f"format=s16le rate={self.mic_rate} channels={self.mic_channels}\n"
            f"load-module module-pipe-sink sink_name={SPEAKER_NAME} file={root / 'spk.fifo'} "
            f"format=s16le rate={SPEAKER_RATE} channels={SPEAKER_CHANNELS} "
            "use_system_clock_for_timing=yes\n"
            f"set-default-source {MIC_NAME}\n"
            f"set-default-sink {SPEAKER_NAME}\n")
        (root / "asoundrc").write_text(
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n"
            f'pcm.{MIC_NAME} {{ type pulse; device "{MIC_NAME}" }}\n'
            f'pcm.{SPEAKER_NAME} {{ type pulse; device "{SPEAKER_NAME}" }}\n')
        (root / "client.conf").write_text("autospawn = no\n")

    def _launch_daemon(self, timeout: float) -> None:
        """Start pulseaudio, trying again if it dies while starting: now and then it aborts
        in the dynamic loader while loading its modules ("Inconsistency detected by
        ld.so: dl-open.c: ... dl_open_worker_begin", seen once in a CI run's restart, which
        then left the suite without sound devices); a second start works."""
        for attempt in range(1, LAUNCH_TRIES + 1):
            try:
                self._launch_daemon_once(timeout)
                return
            except _ExitedAtStartError as exc:
                if attempt == LAUNCH_TRIES:
                    raise VirtualAudioError(f"pulseaudio exited at start {attempt} times:\n"
                                            f"{exc}") from None
                log.warning("pulseaudio exited at start (try %d of %d):\n%s", attempt,
                            LAUNCH_TRIES, exc)

    def _launch_daemon_once(self, timeout: float) -> None:
        root = self.root
        assert root is not None
        env = {**os.environ, **self.client_env()}
        self._daemon = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n",
             "-F", str(root / "vaudio.pa"), "--log-target=stderr", "--high-priority=no",
             "--realtime=no", "--disallow-exit"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                self.kill_daemon()
                raise _ExitedAtStartError(self.daemon_log)
            probe = subprocess.run(["pactl", "list", "short", "sources"], env=env,
                                   capture_output=True, text=True, timeout=5)
            if probe.returncode == 0 and MIC_NAME in probe.stdout:
                return
            time.sleep(0.05)
        self.kill_daemon()
        raise VirtualAudioError(f"the virtual microphone did not appear within {timeout} s:\n"
                                f"{self.daemon_log}")

    def _open_fifos(self) -> None:
        root = self.root
        assert root is not None
        # Non-blocking opens: the daemon already holds the other ends open.
        self._mic_fd = os.open(root / "mic.fifo", os.O_WRONLY | os.O_NONBLOCK)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._mic_fd, _F_SETPIPE_SZ, _MIC_PIPE_BYTES)
        self._spk_fd = os.open(root / "spk.fifo", os.O_RDONLY | os.O_NONBLOCK)


def _die_with_parent() -> None:
    """In the daemon's child process: get SIGTERM when the parent dies (Linux).

    A test run killed with SIGKILL cannot stop its daemon; the kernel does it instead,
    so no orphaned PulseAudio keeps FIFOs open.
    """
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    from voicebot.audio.wav_io import read_wav, write_wav_atomic

    parser = argparse.ArgumentParser(
        prog="python -m voicebot.audio.virtual_device",
        description="Run a virtual microphone (vmic) and speaker (vspeaker) until Ctrl-C.")
    parser.add_argument("--mic-rate", type=int, default=16_000)
    parser.add_argument("--mic-channels", type=int, default=1)
    parser.add_argument("--loop", type=Path, help="WAV file spoken into the mic again and again")
    parser.add_argument("--record", type=Path, help="save what the speaker played to this WAV")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long")
    parser.add_argument("--root", type=Path, help="folder for sockets, FIFOs and config "
                        "(default: a new temporary folder, removed at exit)")
    args = parser.parse_args(argv)
    loop = read_wav(args.loop) if args.loop else None
    if args.root:
        args.root.mkdir(parents=True, exist_ok=True)
    with VirtualAudio(args.mic_rate, args.mic_channels, speaker_seconds=120,
                      root=args.root) as va:
        print("# virtual audio running; in another shell run:")
        for key, value in va.client_env().items():
            print(f"export {key}='{value}'")
        print("# then e.g.: voicebot   (choose input 'vmic', output 'vspeaker')", flush=True)
        start = time.monotonic()
        try:
            while not args.seconds or time.monotonic() - start < args.seconds:
                if loop is not None and va.wait_mic_idle(0):
                    va.inject(loop.samples, loop.sample_rate)
                    va.inject(np.zeros(loop.sample_rate // 2, np.float32), loop.sample_rate)
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        if args.record:
            played, _ = va.speaker_audio()
            write_wav_atomic(args.record, played, 48_000)
            print(f"# wrote {len(played) / 48_000:.1f} s of speaker audio to {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
