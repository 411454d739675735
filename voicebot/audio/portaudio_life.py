"""PortAudio's lifetime when a stream could not be closed: never terminate under it.

When the sound server dies under an open stream (PulseAudio killed or restarted, a
Bluetooth headset gone), ALSA's pulse plugin can block ``Pa_AbortStream`` for good. The
capture and the player close streams on helper threads and give up waiting
(``close_stream_quietly``), so the app goes on; but ``Pa_Terminate`` waits for every
stream operation in flight, so anything that terminates PortAudio afterwards hangs with
it: sounddevice's own exit handler (the app would never quit) and re-initialising
PortAudio to see new devices. Seen here: 3 of 4 runs of the device-recovery test right
after the echo tests hung in ``Pa_Terminate`` behind a capture's ``Pa_AbortStream``.

This module keeps the closes in flight (``closing``) and refuses to terminate while one
is stuck: :func:`reinitialize` waits a little, then leaves PortAudio as it is (a new
stream still reaches a new server: the pulse plugin connects at each open); at exit the
process leaves at once with ``os._exit`` (the operating system frees what PortAudio
held), since both ``Pa_Terminate`` (a hang) and finishing the interpreter under the
stream's still-running thread (SIGSEGV, 3 of 3 runs) fail. Entry points set
:data:`exit_status`, which an exit handler cannot read. With that, the test pair above
passed 3 of 3 and exited 0. Left as it is: the stuck stream's PortAudio thread, once a
new server runs, prints "Expression 'self->capture.ready || self->playback.ready'
failed" to stderr in a loop until the process ends.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

# How long a terminate waits for closes still in flight before giving up on it.
SETTLE_S = 1.0

_lock = threading.Lock()
_in_flight: set[int] = set()  # thread ids of closes that have not returned
_exit_guarded = False
# The status a process leaving without Pa_Terminate exits with: the interpreter's own is
# out of reach from an exit handler, so entry points say theirs (None: 1, a failure).
exit_status: int | None = None


@contextlib.contextmanager
def closing() -> Iterator[None]:
    """Mark the calling thread as closing a stream until the block ends."""
    _guard_exit()
    ident = threading.get_ident()
    with _lock:
        _in_flight.add(ident)
    try:
        yield
    finally:
        with _lock:
            _in_flight.discard(ident)


def closes_in_flight() -> int:
    with _lock:
        return len(_in_flight)


def settled(timeout: float = SETTLE_S) -> bool:
    """True once no close is in flight, waiting up to ``timeout`` seconds for that."""
    deadline = time.monotonic() + timeout
    while closes_in_flight():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def reinitialize(timeout: float = SETTLE_S) -> bool:
    """Make PortAudio enumerate devices again; False (and nothing done) if a stream's
    close is stuck, since ``Pa_Terminate`` would wait for it forever.

    Any stream still open through sounddevice becomes invalid, so call this only while
    the process has no open streams.
    """
    import sounddevice as sd

    if not settled(timeout):
        log.warning("PortAudio not re-initialised: %d stream close(s) stuck on a vanished "
                    "device", closes_in_flight())
        return False
    sd._terminate()
    sd._initialize()
    return True


def _exit_handler() -> None:
    import sounddevice as sd

    if settled():
        sd._exit_handler()
        return
    # Pa_Terminate would wait for the stuck close forever, and finishing the interpreter
    # under PortAudio's still-running stream thread crashed it (SIGSEGV, 3 of 3 runs):
    # leave at once, after flushing what Python holds.
    log.warning("leaving without terminating PortAudio: a stream close is stuck on a "
                "vanished device")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(1 if exit_status is None else exit_status)


def _guard_exit() -> None:
    """Put our exit handler in the place of sounddevice's (once, at the first close)."""
    global _exit_guarded
    import sounddevice as sd

    with _lock:
        if _exit_guarded:
            return
        _exit_guarded = True
    atexit.unregister(sd._exit_handler)
    atexit.register(_exit_handler)
