"""Speech for made recordings: transcript text made speakable, and espeak-ng voices.

- :func:`speakable`: a transcript turn as the words a voice would say (QMSum's ``{vocalsound}``,
  ``{disfmarker}``, ``[Laughter.]`` and the like removed, ``L_C_D_`` joined to ``LCD``, the corpus'
  detached punctuation and contractions re-attached). What it returns is exactly what is spoken.
- :func:`voice`: the k-th distinct voice (accent variant, pitch, speed), chosen by the speaker's
  order of appearance, never by name, so any meeting gets the same voices in the same order.
- :func:`synthesize`: mono int16 PCM from espeak-ng, text on stdin (never on a command line:
  transcript text is untrusted), trimmed to the voiced part so turn times are tight.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import wave
import io
from dataclasses import dataclass

import numpy as np

#: espeak-ng writes 22,050 Hz; the recordings keep that rate (no resampling, no artefacts)
SAMPLE_RATE = 22050
#: words a minute of the base voice; per-voice offsets are added to it
BASE_WPM = 150

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
    language: str
    variant: str
    pitch: int
    wpm: int
    word_gap: int = 0  # espeak-ng -g: extra pause between words, in 10 ms units

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}" if self.variant else self.language

    def to_dict(self) -> dict:
        return {"voice": self.name, "pitch": self.pitch, "wpm": self.wpm, **({"word_gap": self.word_gap} if self.word_gap else {})}


def voice(k: int, language: str = "en-us", wpm: int = BASE_WPM, word_gap: int = 0) -> Voice:
    """The k-th speaker's voice: distinct for k < len(VARIANTS)*len(PITCHES)*len(SPEED_OFFSETS)
    (108), cycling after that (a committee with more speakers reuses voices, far apart in order)."""
    nv, npch = len(VARIANTS), len(PITCHES)
    k %= nv * npch * len(SPEED_OFFSETS)
    return Voice(language, VARIANTS[k % nv], PITCHES[(k // nv) % npch], wpm + SPEED_OFFSETS[k // (nv * npch)], word_gap)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, v: Voice, *, trim: bool = True, pad: float = 0.0, timeout: float = 600.0) -> np.ndarray:
    """int16 PCM at :data:`SAMPLE_RATE` for ``text`` spoken by ``v`` (leading/trailing silence cut
    to ``pad`` seconds; keeping 60 ms made no measurable difference to recognition)."""
    # --stdin and a trailing newline: the text never reaches argv, and "-x" stays a word
    cmd = ["espeak-ng", "-v", v.name, "-p", str(v.pitch), "-s", str(v.wpm), *(["-g", str(v.word_gap)] if v.word_gap else []),
           "--stdout", "--stdin"]
    out = subprocess.run(cmd, input=(text + "\n").encode("utf-8"), capture_output=True, check=True, timeout=timeout).stdout
    pcm = _wav_pcm(out)
    if trim and pcm.size:
        loud = np.flatnonzero(np.abs(pcm) > 328)  # -40 dBFS
        k = int(pad * SAMPLE_RATE)
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
