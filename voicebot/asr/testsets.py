"""Short-command and sentence test sets for recognition accuracy, generated on demand.

No audio is kept in the repository: ``build()`` writes WAV files (16 kHz mono int16) and
one manifest per set (``AUDIO<TAB>REFERENCE``, the format of ``voicebot asr-eval
--manifest``) into a cache folder, the same every time for the same seed.

Sets (about 1-2 s per command, 2-6 s per sentence):
- ``real-commands``: real recorded speech. The four short "cards" recordings of
  pocketsphinx-testdata whole, plus spans of 1-3 words cut out of the five LibriVox
  sentences and the long cards recording. The cut points come from Whisper's
  cross-attention alignment of the *reference* words (not of a transcript), each span is
  cut from 60 ms before its first word's start to 40 ms before the next word's start,
  faded in/out over 10 ms and framed by 0.25-0.5 s of silence, like a push-to-talk clip.
- ``real-sentences``: the ten pocketsphinx-testdata recordings as they are.
- ``hibari-commands`` / ``hibari-sentences``: the hibari-tts voice "heart" (a distilled
  Kokoro voice the project uses for nothing else), speed 0.9-1.15.
- ``espeak-commands`` / ``espeak-sentences``: espeak-ng (formant synthesis, four
  voice variants), 150-190 words per minute.
Synthetic clips get seeded low noise (-60 dBFS) so that no clip is digital silence.

Context sets, where the conversation decides (``CONTEXT_SENTENCES``: answers to the bot's
own question, names the user said earlier, homophones the question settles); built only
when asked for (``build(sets=CONTEXT_SETS)``, ``voicebot bench rescoring``). Beside each
manifest ``<set>.context.json`` maps every clip to the conversation before it (messages,
the bot's question last):
- ``real-context``: the ten pocketsphinx-testdata recordings, each after a bot question
  it answers;
- ``piper-context``: the embedded Piper voice (``piper-en-us-joe-medium``, sampling noise
  off, so a text always sounds the same), length scale 0.9-1.1; built only with its
  speaker passed in (``voicebot bench rescoring`` does: recognition cannot import voices);
- ``hibari-context``: the hibari stand-in voice, a second speaker.

``python -m voicebot.asr.testsets [--out DIR]`` builds them and prints the manifests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from voicebot.asr.audio_input import read_audio_file, to_recognizer_audio
from voicebot.audio.resample import ASR_RATE
from voicebot.paths import user_dirs
from voicebot.text.scoring import words_for_scoring

# Bump when what a set contains changes, so cached sets are rebuilt.
TESTSETS_VERSION = 1
DEFAULT_SEED = 18

COMMANDS = [
    "front center", "front left", "rear right", "side left", "stop", "go back",
    "next song", "turn it up", "volume down", "lights off", "open the door", "yes please",
    "no thanks", "cancel", "repeat that", "thank you", "good morning", "pause",
    "play music", "call mom", "set a timer", "skip", "never mind", "read my messages",
    "start recording", "scroll down", "zoom in", "turn left", "help", "go forward",
    "clear conversation", "new chat", "slow down", "speak faster", "weather today",
    "what time is it", "louder please", "close the window", "good night", "open settings",
]
SENTENCES = [
    "Please remind me to buy milk on the way home.",
    "What is the weather going to be like tomorrow morning?",
    "Tell me a short story about a dragon and a knight.",
    "How many minutes are there in a day?",
    "My name is Alice and I live in a small town by the sea.",
    "Could you read the last message from my brother again?",
    "The train to the city leaves at seven in the evening.",
    "Turn off the lights in the kitchen and lock the front door.",
    "I would like to listen to some quiet music while I work.",
    "Which planet is the closest to the sun?",
    "She sold her old bicycle and bought a new guitar.",
    "Set an alarm for half past six tomorrow.",
]
# (conversation before the answer, the answer). Messages are (role, text), bot last.
CONTEXT_SENTENCES: list[tuple[tuple[tuple[str, str], ...], str]] = [
    ((("assistant", "Nice to meet you! What's your name?"),), "Anneliese."),
    ((("assistant", "And what should I call you?"),), "Call me Rowena."),
    ((("assistant", "Which city were you born in?"),), "Worcester."),
    ((("assistant", "What's your dog called?"),), "Her name is Biscuit."),
    ((("assistant", "Which color do you like best?"),), "Teal."),
    ((("assistant", "What would you like to drink?"),), "Two cups of tea, please."),
    ((("assistant", "How many tickets do you need?"),), "Four tickets."),
    ((("assistant", "Which fruit should I add to the list?"),), "Pears."),
    ((("assistant", "What did the knight ride into battle?"),), "A white horse."),
    ((("assistant", "Which flower is your favourite?"),), "A red rose."),
    ((("assistant", "Who wrote Pride and Prejudice?"),), "Jane Austen."),
    ((("assistant", "Which planet has the biggest rings?"),), "Saturn."),
    ((("assistant", "Where are you flying to next week?"),), "To Reykjavik."),
    ((("assistant", "What kind of tree is that?"),), "It's a birch."),
    ((("assistant", "What's the weather like where you are?"),), "It's raining."),
    ((("assistant", "What do you call a baby deer?"),), "A fawn."),
    ((("assistant", "What should I buy at the bakery?"),), "A loaf of bread."),
    ((("assistant", "Which month is your birthday in?"),), "In March."),
    ((("assistant", "What's your surname?"),), "Kowalski."),
    ((("assistant", "Which number comes after seven?"),), "Eight."),
    ((("assistant", "What did you see at the zoo?"),), "A bear and two deer."),
    ((("assistant", "How would you like your steak?"),), "Medium rare."),
    ((("assistant", "Where should I put the flowers?"),), "Over there, by the window."),
    ((("assistant", "What instrument do you play?"),), "The cello."),
    ((("assistant", "Which language are you learning?"),), "Portuguese."),
    ((("assistant", "What's your favourite cheese?"),), "Gruyere."),
    ((("user", "My cat is called Mittens."),
      ("assistant", "What a sweet name! What does she like to do?")),
     "Mittens likes to sleep all day."),
    ((("user", "I work with a guy named Thaddeus."), ("assistant", "What is he like?")),
     "Thaddeus is very funny."),
    ((("user", "We are going to Lake Tahoe this summer."),
      ("assistant", "That sounds lovely. How will you get there?")),
     "We will drive to Tahoe."),
    ((("user", "My son Ezekiel turns five today."),
      ("assistant", "Happy birthday to him! What are you planning?")),
     "A party for Ezekiel."),
    ((("user", "My best friend Priyanka is visiting."),
      ("assistant", "How fun! Who is coming?")), "Priyanka is coming."),
    ((("user", "I just adopted a parrot named Kiwi."),
      ("assistant", "Lovely! What is your parrot's name again?")), "Kiwi."),
]
# The pocketsphinx-testdata recordings (by file name) after a bot question they answer.
REAL_CONTEXT = {
    "sense_and_sensibility_01_austen_64kb-0870.wav":
        "In Sense and Sensibility, what did Mister John Dashwood think about after his "
        "father died?",
    "sense_and_sensibility_01_austen_64kb-0880.wav":
        "Was John Dashwood a bad young man?",
    "sense_and_sensibility_01_austen_64kb-0890.wav":
        "So was he selfish or cold hearted?",
    "sense_and_sensibility_01_austen_64kb-0920.wav":
        "Would a kinder wife have made him a better man?",
    "sense_and_sensibility_01_austen_64kb-0930.wav":
        "Could he have become a likeable person?",
    "001.wav": "Which card did you draw?",
    "002.wav": "Which cards are in your hand?",
    "003.wav": "What card is on the table?",
    "004.wav": "Which number did the dice show twice?",
    "005.wav": "Name the three cards you were dealt.",
}
CONTEXT_SETS = ["real-context", "piper-context", "hibari-context"]
CONTEXT_SUFFIX = ".context.json"
ESPEAK_VOICES = ["en-us", "en", "en-us+f3", "en-us+m3"]
# Cut points around a span's aligned words (seconds): before its first word's start,
# and before the next word's start (the aligned start is a frame or two late).
CUT_BEFORE = 0.06
CUT_BEFORE_NEXT = 0.04
FADE_SECONDS = 0.01
SYNTH_NOISE = 1e-3  # -60 dBFS


def default_dir() -> Path:

    return user_dirs().cache / "asr-testsets" / f"v{TESTSETS_VERSION}"


def _frame(audio: np.ndarray, rng: np.random.Generator, noise: float = 0.0) -> np.ndarray:
    """Fade the edges and put 0.25-0.5 s of silence (or faint noise) around a clip."""
    audio = np.asarray(audio, dtype=np.float32).copy()
    fade = min(int(FADE_SECONDS * ASR_RATE), len(audio) // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        audio[:fade] *= ramp
        audio[-fade:] *= ramp[::-1]
    before, after = (int(rng.uniform(0.25, 0.5) * ASR_RATE) for _ in range(2))
    out = np.concatenate([np.zeros(before, np.float32), audio, np.zeros(after, np.float32)])
    if noise:
        out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    return out


def _write(path: Path, audio: np.ndarray) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1.0, 1.0), ASR_RATE, subtype="PCM_16")
    return path


def _write_manifest(path: Path, rows: list[tuple[Path, str]]) -> Path:
    path.write_text("".join(f"{audio.as_posix()}\t{text}\n" for audio, text in rows),
                    encoding="utf-8")
    return path


def aligned_words(model, audio: np.ndarray, reference: str):
    """Whisper's cross-attention timings of the reference words in ``audio``."""
    from voicebot.asr.whisper_timing import word_timings

    words = reference.split()
    tokens = model.tokenizer.encode(" " + " ".join(words), add_special_tokens=False)
    timed = word_timings(model, model.encode(audio), tokens, model.prompt("en"))
    if [words_for_scoring(w.word) for w in timed] != [words_for_scoring(w) for w in words]:
        return None
    return timed


def real_commands(model, rng: np.random.Generator, folder: Path) -> list[tuple[Path, str]]:
    from voicebot.asr.evaluate import pocketsphinx_testdata

    rows = []
    for utt in pocketsphinx_testdata():
        audio = read_audio_file(utt.audio)
        words = utt.reference.split()
        if len(words) <= 4 and len(audio) <= 2.5 * ASR_RATE:  # already a short command
            rows.append((_write(folder / f"{utt.audio.stem}.wav", audio), utt.reference))
            continue
        timed = aligned_words(model, audio, utt.reference)
        if timed is None:
            continue
        i = 0
        while i < len(words):
            j = min(len(words), i + int(rng.integers(1, 4)))
            start = max(0.0, timed[i].start - CUT_BEFORE)
            end = timed[j].start - CUT_BEFORE_NEXT if j < len(words) else len(audio) / ASR_RATE
            clip = audio[int(start * ASR_RATE):int(end * ASR_RATE)]
            if len(clip) >= 0.2 * ASR_RATE:
                name = folder / f"{utt.audio.stem}-w{i:02d}-{j:02d}.wav"
                rows.append((_write(name, _frame(clip, rng)), " ".join(words[i:j])))
            i = j
    return rows


def real_sentences(folder: Path) -> list[tuple[Path, str]]:
    from voicebot.asr.evaluate import pocketsphinx_testdata

    return [(_write(folder / f"{u.audio.stem}.wav", read_audio_file(u.audio)), u.reference)
            for u in pocketsphinx_testdata()]


def hibari_set(texts: list[str], rng: np.random.Generator, folder: Path,
               prefix: str) -> list[tuple[Path, str]]:
    from hibari import SAMPLE_RATE as HIBARI_RATE
    from hibari import Hibari

    tts = Hibari(threads=1)  # the bundled default voice, "heart"
    rows = []
    for index, text in enumerate(texts):
        speed = float(rng.uniform(0.9, 1.15))
        audio = tts(text, speed=speed, seed=int(rng.integers(1 << 31)))
        audio = to_recognizer_audio(audio, HIBARI_RATE)
        rows.append((_write(folder / f"{prefix}-{index:02d}.wav",
                            _frame(audio, rng, SYNTH_NOISE)), text))
    return rows


def espeak_set(texts: list[str], rng: np.random.Generator, folder: Path,
               prefix: str) -> list[tuple[Path, str]]:
    import soundfile as sf

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(texts):
            voice = ESPEAK_VOICES[int(rng.integers(len(ESPEAK_VOICES)))]
            speed = int(rng.integers(150, 191))
            raw = Path(tmp) / "out.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
                           check=True, capture_output=True)
            data, rate = sf.read(raw, dtype="float32")
            audio = to_recognizer_audio(data, rate)
            rows.append((_write(folder / f"{prefix}-{index:02d}.wav",
                                _frame(audio, rng, SYNTH_NOISE)), text))
    return rows


def context_messages(turns) -> list[dict[str, str]]:
    return [{"role": role, "content": text} for role, text in turns]


def real_context(folder: Path) -> tuple[list[tuple[Path, str]], list[list[dict]]]:
    from voicebot.asr.evaluate import pocketsphinx_testdata

    rows, contexts = [], []
    for utt in pocketsphinx_testdata():
        question = REAL_CONTEXT.get(utt.audio.name)
        if question is None:
            continue
        rows.append((_write(folder / utt.audio.name, read_audio_file(utt.audio)),
                     utt.reference))
        contexts.append(context_messages([("assistant", question)]))
    return rows, contexts


def voice_set(texts: list[str], rng: np.random.Generator, folder: Path, prefix: str,
              speak) -> list[tuple[Path, str]]:
    """Clips spoken by ``speak(text, length_scale) -> (samples, rate)``, a voice of the
    layers above (``voicebot.pipeline.bench_rescoring.piper_speaker``), each at a length
    scale of 0.9-1.1."""
    rows = []
    for index, text in enumerate(texts):
        audio, rate = speak(text, float(rng.uniform(0.9, 1.1)))
        audio = to_recognizer_audio(audio, rate)
        rows.append((_write(folder / f"{prefix}-{index:02d}.wav",
                            _frame(audio, rng, SYNTH_NOISE)), text))
    return rows


def read_contexts(manifest: Path) -> dict[str, list[dict[str, str]]]:
    """A context set's conversations: audio path as in the manifest -> messages ({} for
    a set without them)."""
    path = manifest.with_name(manifest.stem + CONTEXT_SUFFIX)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def build(out: Path | None = None, seed: int = DEFAULT_SEED, model=None,
          sets: list[str] | None = None, speakers: dict | None = None) -> dict[str, Path]:
    """Generate the sets (skipping those already built with this seed); name -> manifest.

    ``model``: a ``WhisperModel`` for the real-speech alignment (default: the app's).
    ``speakers``: set name -> ``speak`` function (``voice_set``) for the sets spoken by
    a voice of the layers above (``piper-context``; recognition cannot import voices).
    Sets whose source is missing here (no pocketsphinx-testdata, hibari, espeak-ng or
    speaker) are left out.
    """
    out = Path(out) if out else default_dir()
    out.mkdir(parents=True, exist_ok=True)
    wanted = sets or ["real-commands", "real-sentences", "hibari-commands",
                      "hibari-sentences", "espeak-commands", "espeak-sentences"]
    manifests = {}
    for offset, name in enumerate(wanted):
        folder = out / name
        manifest = out / f"{name}.tsv"
        stamp = folder / "built.json"
        if manifest.is_file() and stamp.is_file() and \
                json.loads(stamp.read_text()) == {"seed": seed, "version": TESTSETS_VERSION}:
            manifests[name] = manifest
            continue
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        # One generator per set: a set's content does not depend on which others are built.
        rng = np.random.default_rng([seed, offset])
        rows, contexts = _make_context(name, folder, rng, speakers or {}) \
            if name in CONTEXT_SETS \
            else (_make(name, folder, rng, model), None)
        if not rows:
            continue
        relative = [(Path(folder.name) / p.name, t) for p, t in rows]
        _write_manifest(manifest, relative)
        if contexts is not None:
            (out / f"{name}{CONTEXT_SUFFIX}").write_text(json.dumps(
                {p.as_posix(): c for (p, _), c in zip(relative, contexts, strict=True)},
                indent=1), encoding="utf-8")
        stamp.write_text(json.dumps({"seed": seed, "version": TESTSETS_VERSION}))
        manifests[name] = manifest
    return manifests


def _make(name: str, folder: Path, rng: np.random.Generator, model):
    from voicebot.asr.evaluate import pocketsphinx_testdata

    if name.startswith("real-") and not pocketsphinx_testdata():
        return []
    if name == "real-commands":
        if model is None:
            from voicebot.asr.whisper_engine import load_whisper

            model = load_whisper("whisper-tiny-en", "cpu")
        return real_commands(model, rng, folder)
    if name == "real-sentences":
        return real_sentences(folder)
    texts = COMMANDS if name.endswith("-commands") else SENTENCES
    if name.startswith("hibari-"):
        try:
            import hibari  # noqa: F401
        except ImportError:
            return []
        return hibari_set(texts, rng, folder, name.split("-")[1])
    if name.startswith("espeak-"):
        if not shutil.which("espeak-ng"):
            return []
        return espeak_set(texts, rng, folder, name.split("-")[1])
    raise ValueError(f"unknown test set {name!r}")


def _make_context(name: str, folder: Path, rng: np.random.Generator, speakers: dict):
    """(rows, the conversation before each) of a context set; ([], []) without its source."""
    from voicebot.asr.evaluate import pocketsphinx_testdata

    if name == "real-context":
        return real_context(folder) if pocketsphinx_testdata() else ([], [])
    texts = [answer for _, answer in CONTEXT_SENTENCES]
    contexts = [context_messages(turns) for turns, _ in CONTEXT_SENTENCES]
    if name in speakers:
        return voice_set(texts, rng, folder, "context", speakers[name]), contexts
    if name != "hibari-context":
        return [], []
    try:
        import hibari  # noqa: F401
    except ImportError:
        return [], []
    return hibari_set(texts, rng, folder, "context"), contexts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder (default: cache)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sets", nargs="*", default=None,
                        help="set names (default: all but the context sets)")
    args = parser.parse_args(argv)
    for name, path in build(args.out, args.seed, sets=args.sets).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
