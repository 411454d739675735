"""IPA phonemes from espeak-ng, bound with ctypes.

Piper voices are trained on espeak-ng's IPA output. The `piper-phonemize` wheel would
bring its own espeak build, but the system library (Debian `libespeak-ng1`) already does
the job through ``espeak_TextToPhonemes``, so no extra package is needed. That function
returns one clause per call and drops the clause's punctuation, so callers that care
about pauses split at punctuation themselves (see ``voicebot.tts.piper``).

espeak-ng keeps global state (voice, buffers): every call goes through one lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import re
import threading

log = logging.getLogger(__name__)

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_PHONEMES_IPA = 0x02
_EE_OK = 0

# espeak marks a switch to another language's rules as "(fr)", "(en-us)" … in its output.
_LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)")


class EspeakError(RuntimeError):
    """espeak-ng is missing or refused a voice."""


class Espeak:
    """One process-wide espeak-ng instance (the library itself is a singleton)."""

    _instance: Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self._lib = ctypes.cdll.LoadLibrary(name)
        except OSError as exc:
            raise EspeakError(
                "espeak-ng is not installed (Debian/Ubuntu: apt install libespeak-ng1)"
            ) from exc
        lib = self._lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int,
                                              ctypes.c_int]
        # DONT_EXIT: espeak would otherwise call exit() on a fatal data error.
        if lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None,
                                 _ESPEAK_INITIALIZE_DONT_EXIT) <= 0:
            raise EspeakError("espeak-ng failed to initialise (is espeak-ng-data installed?)")
        self._lock = threading.Lock()
        self._voice: str | None = None

    @classmethod
    def get(cls) -> Espeak:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _set_voice(self, voice: str) -> None:
        if voice == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        self._voice = voice

    def phonemize(self, text: str, voice: str) -> str:
        """IPA for ``text`` (one string; espeak's clauses joined with spaces)."""
        if not text.strip():
            return ""
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        cursor = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses = []
        with self._lock:
            self._set_voice(voice)
            # espeak advances the cursor clause by clause and sets it to NULL at the end.
            while cursor.value:
                result = self._lib.espeak_TextToPhonemes(
                    ctypes.byref(cursor), _ESPEAK_CHARS_UTF8, _ESPEAK_PHONEMES_IPA)
                if result:
                    clauses.append(result.decode("utf-8", errors="replace"))
        phonemes = " ".join(c.strip() for c in clauses if c.strip())
        return _LANGUAGE_SWITCH.sub("", phonemes)


def phonemize(text: str, voice: str = "en-us") -> str:
    return Espeak.get().phonemize(text, voice)


class _InProcess:
    """Coqui's per-segment espeak call, answered by the library instead of the program."""

    def __init__(self, language: str, program_call) -> None:
        self.language = language
        self.program_call = program_call

    def __call__(self, text: str, separator: str = "") -> str:
        if separator:  # phonemes joined with a separator: only the program does that
            return self.program_call(text, separator)
        return phonemize(text, self.language)


def coqui_phonemizer_in_process(tokenizer) -> None:
    """Make a Coqui tokenizer's espeak phonemizer run in-process.

    Coqui's ``ESpeak`` starts the espeak-ng program once per text segment: 12 ms per
    sentence on an idle 2-core machine, about 0.1 s on a busy one, paid before a
    Tacotron2 voice can start speaking each piece. The library gives the same IPA in
    0.3 ms: identical strings on 255 sentences (teacher corpus, prompts, punctuation,
    numbers, accents; tests/tts/test_espeak_coqui.py keeps checking). Segmenting,
    punctuation and ids stay Coqui's own.
    """
    phonemizer = getattr(tokenizer, "phonemizer", None)
    if phonemizer is None or phonemizer.name() not in ("espeak", "espeak-ng"):
        return
    if not isinstance(phonemizer._phonemize, _InProcess):
        phonemizer._phonemize = _InProcess(phonemizer.language, phonemizer._phonemize)
