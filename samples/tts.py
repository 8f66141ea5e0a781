"""Speech for made recordings: transcript text made speakable, and the voices that say it.

- :func:`speakable`: a transcript turn as the words a voice would say (QMSum's ``{vocalsound}``,
  ``{disfmarker}``, ``[Laughter.]`` and the like removed, ``L_C_D_`` joined to ``LCD``, the corpus'
  detached punctuation and contractions re-attached). What it returns is exactly what is spoken.
- :func:`engine`: the synthesiser used: flite when installed (faster-whisper base mishears it
  far less: 5.6-7.5% word error rate against espeak-ng's 10.7% on the same three made stretches),
  else espeak-ng.
- :func:`voice`: the k-th distinct voice of an engine (flite: speaker, pitch, speed; espeak-ng:
  accent variant, pitch, speed), chosen by the speaker's order of appearance, never by name, so
  any meeting gets the same voices in the same order.
- :func:`synthesize`: mono int16 PCM at the voice's :attr:`~Voice.rate`, text on stdin (never on a
  command line: transcript text is untrusted), trimmed to the voiced part so turn times are tight.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass

import numpy as np

#: espeak-ng writes 22,050 Hz; a recording keeps its engine's rate (no resampling, no artefacts)
SAMPLE_RATE = 22050
#: flite's 16 kHz voices (kal, at 8 kHz, is not used)
FLITE_RATE = 16000
#: words a minute of the base voice; per-voice offsets are added to it (flite: its voices' own
#: pace at 150, their durations scaled by 150 / wpm otherwise)
BASE_WPM = 150

#: engines in order of preference (the first installed one is used)
ENGINES = ("flite", "espeak-ng")

# flite's voices in order of word error rate of faster-whisper base on three 3-minute made meeting
# stretches (AMI, ICSI, committee; AAC 96 kb/s), one voice for every speaker: awb 5.6%, slt 6.3%,
# kal16 7.3%, rms 7.5% (espeak-ng's voices, one per speaker: 10.7%); the same speech cut a little
# differently moved one clip's figure by up to 2.4 points, so the order among them is loose.
FLITE_VOICES = ("awb", "slt", "kal16", "rms")
# int_f0_target_mean (Hz) per voice, its own first (None: not set); rms ignores the setting, so it
# varies by speed alone. The others' own means are about 170 (slt), 128 (awb) and 91 Hz (kal16).
FLITE_PITCHES = {
    "slt": (None, 150, 195, 135, 215, 240),
    "rms": (None,),
    "awb": (None, 110, 150, 98, 170, 190),
    "kal16": (None, 108, 80, 122, 140, 72),
}
# duration_stretch (1 = the voice's own pace: a made meeting 11% faster than espeak-ng's at 150 words
# a minute; the word error rates above are at 1)
FLITE_STRETCHES = (1.0, 1.1, 0.92, 1.2, 0.86)

# Variants in order of word error rate of faster-whisper base on the same 5-minute AMI stretch
# (m6 7.3%, m3 8.0%, m8 8.6%, m5 8.8%, m1 9.6%, m2 9.6%, m7 10.1%; the female f2 10.2%, f1 12.3%,
# f3-f5 12.5-14.4% left out; robot, whisper and croak variants not tried), a female voice early
# so a four-person meeting has one. Pitch and speed moved it by under a point (m1: 9.4-10.4%).
VARIANTS = ("m6", "m3", "f2", "m8", "m5", "m1", "m2", "f1", "m7")
PITCHES = (50, 35, 65, 80)
SPEED_OFFSETS = (0, -10, 10)

_TAG = re.compile(r"\{[^{}]*\}")  # {vocalsound}, {disfmarker}, {gap}, {pause}, {comment}, ...
_BRACKET = re.compile(r"\[[^\[\]]*\]")  # [Laughter.], [Inaudible.]
_SPELLED = re.compile(r"\b((?:[A-Za-z]_){1,12})([A-Za-z]*(?:'[A-Za-z]+)?)")  # L_C_D_s -> LCDs
_DETACHED = re.compile(r"\s+([.,?!;:%])")
_CONTRACTION = re.compile(r"(\w)\s+(n't|'(?:s|m|re|ve|ll|d|t)\b)", re.IGNORECASE)
_HYPHEN = re.compile(r"(\w) - (\w)")
_ONLY_PUNCT = re.compile(r"^[\W_]*$")
_OK = re.compile(r"\b(?:OK|Ok)\b")


# Hesitations a synthetic voice cannot say: espeak reads "um" as a word ("am", "a month"),
# which a listener, human or recogniser, then hears as one.
FILLERS = frozenset({"um", "uh", "umm", "uhm", "hmm", "mm", "mmm", "mhm", "mm-hmm", "uh-huh", "er", "erm", "eh", "ah", "ha", "huh"})


# Short words that are whole words even when the next word starts with them ("an answer")
_WHOLE = frozenset("""a an and any as at all also be but by can do for from go he her his how i if
in is it me my no not now of on one or our out over see she so some the their them then there they
this to too two up us use was way we were what when who why will with you your""".split())


def _fluent(s: str) -> str:
    """Drops fillers, a cut-off fragment before the word it restarts ("cou could") and a word
    said twice in a row ("the the"): disfluencies of live speech that read-aloud speech lacks."""
    out: list[str] = []
    words = s.split()
    for i, w in enumerate(words):
        bare = w.strip(",.?!;:").lower()
        if bare in FILLERS:
            if w[-1] in ".?!" and out and out[-1][-1] not in ".?!":
                out[-1] = out[-1].rstrip(",;:") + w[-1]
            continue
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if w.isalpha() and w.lower() not in _WHOLE and nxt != w.lower() and nxt.startswith(w.lower()) and len(w) < len(nxt.strip(",.?!;:")):
            continue  # a fragment: the speaker restarted the word
        if out and bare and bare == out[-1].strip(",.?!;:").lower() and out[-1][-1:].isalnum():
            continue
        out.append(w)
    return " ".join(out)


def speakable(text: str, fluent: bool = True) -> str:
    """The words to speak for one transcript turn ('' when nothing is left to say); with
    ``fluent``, without the disfluencies :func:`_fluent` removes."""
    s = _TAG.sub(" ", text)
    s = _BRACKET.sub(" ", s)
    s = _SPELLED.sub(lambda m: m.group(1).replace("_", "") + m.group(2), s)
    s = s.replace("_", " ")
    s = " ".join(s.split())
    s = _CONTRACTION.sub(r"\1\2", s)
    s = _HYPHEN.sub(r"\1-\2", s)
    s = _DETACHED.sub(r"\1", s)
    s = _OK.sub("okay", s)  # said "okay" either way; written so, as a listener would write it
    if fluent:
        s = _fluent(s)
    # a dangling dash or comma left where a disfluency marker was cut out
    s = re.sub(r"(?:\s*[,-])+\s*([.?!]|$)", r"\1", s).strip(" ,-")
    s = re.sub(r"^[^\w\"'(]+", "", s)
    return "" if _ONLY_PUNCT.match(s) else s


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice."""

    language: str
    variant: str
    pitch: int
    wpm: int
    word_gap: int = 0  # espeak-ng -g: extra pause between words, in 10 ms units

    engine = "espeak-ng"
    rate = SAMPLE_RATE

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language

    def to_dict(self) -> dict:
        return {"engine": "espeak-ng", "voice": self.name, "pitch": self.pitch, "wpm": self.wpm,
                **({"word_gap": self.word_gap} if self.word_gap else {})}


@dataclass(frozen=True)
class FliteVoice:
    """A flite voice: one of its built-in speakers, at a mean pitch (None: the speaker's own) and a
    pace (``duration_stretch``, above 1 slower)."""

    variant: str
    f0: int | None = None
    stretch: float = 1.0

    engine = "flite"
    rate = FLITE_RATE

    @property
    def name(self) -> str:
        return self.variant

    def to_dict(self) -> dict:
        return {"engine": "flite", "voice": self.variant, **({"f0": self.f0} if self.f0 else {}), "stretch": self.stretch}


def _flite_table() -> tuple[tuple[str, int | None, float], ...]:
    """Every (speaker, pitch, pace) once: the speakers' own voices first, then other pitches at the
    same pace, then the slower and faster paces, so the first speakers of a meeting get the least
    altered voices."""
    out = []
    for stretch in FLITE_STRETCHES:
        for p in range(max(len(v) for v in FLITE_PITCHES.values())):
            for name in FLITE_VOICES:
                if p < len(FLITE_PITCHES[name]):
                    out.append((name, FLITE_PITCHES[name][p], stretch))
    return tuple(out)


_FLITE = _flite_table()


def engine() -> str | None:
    """The first engine of :data:`ENGINES` that is installed, None when none is."""
    return next((e for e in ENGINES if shutil.which(e)), None)


def engine_version(name: str | None = None) -> str:
    """The engine's version line (for cache keys), "none" when it is not installed."""
    name = name or engine()
    if not name or not shutil.which(name):
        return "none"
    try:
        out = subprocess.run([name, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "none"
    return f"{name}: {out}"


def voice(k: int, language: str = "en-us", wpm: int = BASE_WPM, word_gap: int = 0, *, engine_name: str | None = None) -> Voice | FliteVoice:
    """The k-th speaker's voice of ``engine_name`` (default :func:`engine`, espeak-ng when none is
    installed): distinct for k below the engine's count of voices (flite: 95, espeak-ng: 108),
    cycling after that (a committee with more speakers reuses voices, far apart in order).
    ``language`` and ``word_gap`` apply to espeak-ng only (flite's voices are US English)."""
    if (engine_name or engine()) == "flite":
        name, f0, stretch = _FLITE[k % len(_FLITE)]
        return FliteVoice(name, f0, round(stretch * BASE_WPM / wpm, 3))
    nv, npch = len(VARIANTS), len(PITCHES)
    k %= nv * npch * len(SPEED_OFFSETS)
    return Voice(language, VARIANTS[k % nv], PITCHES[(k // nv) % npch], wpm + SPEED_OFFSETS[k // (nv * npch)], word_gap)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, v: Voice | FliteVoice, *, trim: bool = True, pad: float = 0.0, timeout: float = 600.0) -> np.ndarray:
    """int16 PCM at ``v.rate`` for ``text`` spoken by ``v`` (leading/trailing silence cut to
    ``pad`` seconds; keeping 60 ms made no measurable difference to recognition)."""
    if isinstance(v, FliteVoice):
        pcm = _flite(text, v, timeout)
    else:
        # --stdin and a trailing newline: the text never reaches argv, and "-x" stays a word
        cmd = ["espeak-ng", "-v", v.name, "-p", str(v.pitch), "-s", str(v.wpm), *(["-g", str(v.word_gap)] if v.word_gap else []),
               "--stdout", "--stdin"]
        out = subprocess.run(cmd, input=(text + "\n").encode("utf-8"), capture_output=True, check=True, timeout=timeout).stdout
        pcm = _wav_pcm(out)
    if trim and pcm.size:
        loud = np.flatnonzero(np.abs(pcm) > 328)  # -40 dBFS
        k = int(pad * v.rate)
        pcm = pcm[max(0, loud[0] - k) : loud[-1] + 1 + k] if loud.size else pcm[:0]
    return pcm


def _wav_pcm(data: bytes) -> np.ndarray:
    # espeak's --stdout header carries a 0x7fffffff length (it streams); read the frames by hand
    if len(data) < 44:
        return np.zeros(0, np.int16)
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, width, ch = w.getframerate(), w.getsampwidth(), w.getnchannels()
    except (wave.Error, EOFError):
        rate, width, ch = SAMPLE_RATE, 2, 1
    if rate != SAMPLE_RATE or width != 2 or ch != 1:
        raise RuntimeError(f"espeak-ng wrote {rate} Hz, {8 * width}-bit, {ch} channel(s); expected {SAMPLE_RATE} Hz mono 16-bit")
    pos = data.find(b"data")
    body = data[pos + 8 :] if pos >= 0 else data[44:]
    return np.frombuffer(body[: len(body) // 2 * 2], "<i2").copy()


def _flite(text: str, v: FliteVoice, timeout: float) -> np.ndarray:
    # the text on stdin (-f /dev/stdin), never argv; the WAV to a private file, since flite writes
    # its header last, seeking back, which a pipe cannot do
    with tempfile.TemporaryDirectory(prefix="sleuth-flite-") as d:
        wav = os.path.join(d, "speech.wav")
        cmd = ["flite", "-voice", v.variant, "--setf", f"duration_stretch={v.stretch}",
               *(["--setf", f"int_f0_target_mean={v.f0}"] if v.f0 else []), "-f", "/dev/stdin", "-o", wav]
        subprocess.run(cmd, input=(text + "\n").encode("utf-8"), capture_output=True, check=True, timeout=timeout)
        with wave.open(wav) as w:
            rate, width, ch = w.getframerate(), w.getsampwidth(), w.getnchannels()
            if rate != v.rate or width != 2 or ch != 1:
                raise RuntimeError(f"flite {v.variant} wrote {rate} Hz, {8 * width}-bit, {ch} channel(s); expected {v.rate} Hz mono 16-bit")
            return np.frombuffer(w.readframes(w.getnframes()), "<i2").copy()
