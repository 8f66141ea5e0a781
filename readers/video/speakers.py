"""Speaker turns: which voice speaks each transcript line, by clustering voice embeddings.

The voice encoder is resemblyzer's ``VoiceEncoder`` (a 3-layer LSTM over 40-band mel frames,
weights ``pretrained.pt`` shipped inside the PyPI package), so nothing is fetched at run time.
The feature is optional: without resemblyzer the reader works as before and records why.

    summary = label_speakers(path, lines, has_audio)   # writes line["speaker"] = "S1", ...
    entities = speaker_entities(segments, title)       # one Entity per voice, a Mention per turn

Lines shorter than :data:`MIN_LINE` seconds are too short for a stable embedding; they take the
voice of the nearest embedded line. Each embedded line is cut into resemblyzer's 1.6 s partial
windows, at most :data:`MAX_WINDOWS_PER_MINUTE` per minute of speech in all (a three-hour talk
costs a bounded number of LSTM passes). Windows of all lines go through the network in batches
as the audio streams by (:class:`UnitEmbedder`), checked against the package's own
``embed_utterance`` one line at a time (:func:`embed_units_reference`); the mel frames and the
VAD trimming are numpy versions of the package's librosa/struct code, checked against it too.
Only open lines' samples and one batch of mels are held, so memory does not grow with length.

Clustering is average-linkage agglomerative on cosine distance with a fixed cut
(:data:`THRESHOLD`): the number of speakers falls out of the cut, one when all lines are alike.
The cut sits between the last merge of a real single narrator's lines (0.35-0.38 on
manifesto.mp4, short 2-3 s lines) and the merge of two espeak-ng voices (0.45-0.49).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections import Counter
from typing import Callable, Iterator

import numpy as np

from ...core import Entity, Mention, Node

log = logging.getLogger(__name__)

SR = 16000
#: lines shorter than this (seconds) are not embedded on their own
MIN_LINE = 0.8
#: cosine distance at which average-linkage clusters stop merging (see the module tests)
THRESHOLD = 0.4
#: budget of 1.6 s windows per minute of speech (resemblyzer's own rate is ~78 per minute)
MAX_WINDOWS_PER_MINUTE = 40
#: windows per line at most: a long monologue line needs no more to be recognised
MAX_WINDOWS_PER_LINE = 6
#: windows per forward pass (bounds the LSTM's activations to a few MB)
BATCH = 128
#: rows clustered directly at most (average linkage holds every pairwise distance)
MAX_CLUSTER_ROWS = 2000
#: a cluster holding less than this share of the embedded speech is folded into its nearest
#: neighbour: a cough, a laugh or a music sting is not a speaker
MIN_SHARE = 0.03

_lock = threading.Lock()
_encoder = None


def unavailable_reason() -> str | None:
    """Why speaker labelling cannot run here, or None when it can."""
    try:
        _import_resemblyzer()
    except ImportError as e:
        return f"resemblyzer not installed ({e})"
    except Exception as e:  # a broken install (a missing shared library) must not stop the reader
        return f"resemblyzer cannot be imported ({type(e).__name__}: {e})"
    return None


def _import_resemblyzer():
    # resemblyzer imports binary_dilation from scipy's deprecated ndimage.morphology path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import resemblyzer
    return resemblyzer


def encoder():
    """One shared CPU VoiceEncoder per process (the weights load in well under a second)."""
    global _encoder
    if _encoder is None:
        rz = _import_resemblyzer()
        with _lock:
            if _encoder is None:
                _encoder = rz.VoiceEncoder("cpu", verbose=False)
    return _encoder


# -- audio -----------------------------------------------------------------------------------


def iter_spans(path: str, spans: list[tuple[float, float]], sr: int = SR) -> Iterator[tuple[int, np.ndarray]]:
    """(index, mono float32 audio at ``sr``) for each (t0, t1) span, yielded as soon as the
    stream has passed its end: one decoding pass, and only open spans' samples are held.

    Times are presentation times: the first audio frame's timestamp places the stream, as
    subtitle times assume. A span past the end of the audio comes back short (or empty).
    """
    import av

    if not spans:
        return
    bounds = [(int(round(a * sr)), int(round(b * sr))) for a, b in spans]
    order = sorted(range(len(spans)), key=lambda i: bounds[i][0])
    last = max(b for _, b in bounds)
    held: dict[int, list[np.ndarray]] = {}
    pos: int | None = None
    nxt = 0  # next span (in start order) not yet opened

    def take(x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        nonlocal pos, nxt
        a, b = pos, pos + len(x)
        while nxt < len(order) and bounds[order[nxt]][0] < b:
            held[order[nxt]] = []
            nxt += 1
        for i in list(held):
            s0, s1 = max(a, bounds[i][0]), min(b, bounds[i][1])
            if s1 > s0:
                held[i].append(x[s0 - a : s1 - a])
            if bounds[i][1] <= b:
                yield i, _pcm(held.pop(i))
        pos = b

    try:
        with av.open(path) as c:
            if c.streams.audio:
                res = av.AudioResampler(format="s16", layout="mono", rate=sr)
                try:
                    for frame in c.decode(c.streams.audio[0]):
                        if pos is None:
                            pos = int(round((frame.time or 0.0) * sr))
                        for rf in res.resample(frame):
                            yield from take(rf.to_ndarray().reshape(-1))
                        if pos >= last:
                            break
                    else:
                        for rf in res.resample(None):
                            yield from take(rf.to_ndarray().reshape(-1))
                except av.error.FFmpegError as e:
                    log.info("audio of %s stops early: %s", path, e)
    except av.error.FFmpegError as e:
        log.info("cannot decode audio of %s: %s", path, e)
    # spans the audio never reached (or finished inside): what there is
    for i in list(held) + [order[k] for k in range(nxt, len(order))]:
        yield i, _pcm(held.pop(i, []))


def _pcm(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks else np.zeros(0, np.float32)


def read_spans(path: str, spans: list[tuple[float, float]], sr: int = SR) -> list[np.ndarray]:
    """The audio of every span, in the order given (see :func:`iter_spans`)."""
    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(spans)
    for i, x in iter_spans(path, spans, sr):
        out[i] = x
    return out


# -- units and windows -----------------------------------------------------------------------


def plan_units(lines: list[dict], min_dur: float = MIN_LINE) -> list[list[int]]:
    """Groups of line indices to embed together: each line at least ``min_dur`` long on its own;
    when no line is that long, runs of lines less than a second apart (short rolling captions)."""
    long = [[i] for i, l in enumerate(lines) if l["t1"] - l["t0"] >= min_dur]
    if long or not lines:
        return long
    units, cur = [], [0]
    for i in range(1, len(lines)):
        if lines[i]["t0"] - lines[cur[-1]]["t1"] < 1.0 and lines[i]["t1"] - lines[cur[0]]["t0"] < 6.0:
            cur.append(i)
        else:
            units.append(cur)
            cur = [i]
    units.append(cur)
    return [u for u in units if lines[u[-1]]["t1"] - lines[u[0]]["t0"] >= min_dur]


def _pick(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    if k >= n:
        return list(range(n))
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


_mel_basis: np.ndarray | None = None
_hann: np.ndarray | None = None


def mel_frames(wav: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram, the encoder's input; equals resemblyzer's
    ``wav_to_mel_spectrogram`` (librosa, the reference) at a small fraction of its per-call cost.

    25 ms periodic-Hann windows every 10 ms over the zero-padded signal, |rfft|^2, then librosa's
    Slaney mel filter bank (built once).
    """
    global _mel_basis, _hann
    from resemblyzer.hparams import mel_n_channels, mel_window_length, mel_window_step, sampling_rate

    n_fft = int(sampling_rate * mel_window_length / 1000)
    hop = int(sampling_rate * mel_window_step / 1000)
    if _mel_basis is None:
        import librosa

        _hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
        _mel_basis = librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=mel_n_channels).astype(np.float32)
    y = np.pad(wav.astype(np.float32), n_fft // 2)
    n = 1 + (len(y) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(y, (n, n_fft), (y.strides[0] * hop, y.strides[0]), writeable=False)
    spec = np.fft.rfft(frames * _hann, axis=1)
    power = spec.real**2 + spec.imag**2
    return (power.astype(np.float32) @ _mel_basis.T).astype(np.float32)


def _partials(enc, wav: np.ndarray, max_windows: int | None) -> np.ndarray:
    """Mel windows (n, 160, 40) of one preprocessed utterance, cut as ``embed_utterance`` cuts."""
    wav_slices, mel_slices = enc.compute_partial_slices(len(wav), rate=1.3, min_coverage=0.75)
    if max_windows is not None:
        keep = _pick(len(mel_slices), max_windows)
        wav_slices, mel_slices = [wav_slices[i] for i in keep], [mel_slices[i] for i in keep]
    # the mel of the whole line, then slices, exactly as embed_utterance computes them
    need = max(s.stop for s in wav_slices)
    if need >= len(wav):
        wav = np.pad(wav, (0, need - len(wav)), "constant")
    mel = mel_frames(wav)
    return np.stack([mel[s] for s in mel_slices])


def preprocess(wav: np.ndarray) -> np.ndarray:
    """resemblyzer's ``preprocess_wav`` for 16 kHz audio (the reference): volume raised to
    -30 dBFS, silences longer than ~0.2 s cut by WebRTC VAD; empty when nothing is voiced.

    The same steps with the PCM conversion vectorised (the package packs samples one by one
    with ``struct``) and clipped to int16 rather than wrapped around on loud peaks.
    """
    rz = _import_resemblyzer()
    import webrtcvad
    from resemblyzer import hparams as hp
    from scipy.ndimage import binary_dilation

    if wav.size < SR * 0.1 or not np.any(wav):
        return np.zeros(0, np.float32)
    wav = rz.normalize_volume(wav, hp.audio_norm_target_dBFS, increase_only=True)
    win = hp.vad_window_length * hp.sampling_rate // 1000
    wav = wav[: len(wav) - len(wav) % win]
    pcm = np.clip(np.round(wav * 32767), -32768, 32767).astype("<i2").tobytes()
    vad = webrtcvad.Vad(mode=3)
    flags = np.array([vad.is_speech(pcm[i * 2 : (i + win) * 2], sample_rate=hp.sampling_rate) for i in range(0, len(wav), win)], float)
    if flags.size == 0:
        return np.zeros(0, np.float32)
    width = hp.vad_moving_average_width
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    ret = np.cumsum(padded)
    ret[width:] = ret[width:] - ret[:-width]
    mask = np.round(ret[width - 1 :] / width).astype(bool)
    mask = binary_dilation(mask, np.ones(hp.vad_max_silence_length + 1))
    return wav[np.repeat(mask, win)].astype(np.float32)


def preprocess_reference(wav: np.ndarray) -> np.ndarray:
    """resemblyzer's own ``preprocess_wav`` (16 kHz input, no resampling)."""
    return _import_resemblyzer().preprocess_wav(wav).astype(np.float32)


class UnitEmbedder:
    """Embeds utterances as they arrive: windows queue up and go through the LSTM ``batch`` at a
    time, and only per-utterance sums are kept, so memory stays at one batch of mels."""

    def __init__(self, n: int, batch: int = BATCH):
        self.enc = encoder()
        self.batch = batch
        self.sums = np.zeros((n, 256), np.float64)
        self.counts = np.zeros(n, int)
        self.windows = 0
        self._mels: list[np.ndarray] = []
        self._owner: list[int] = []

    def add(self, i: int, wav: np.ndarray, max_windows: int | None = None) -> None:
        if wav.size == 0:
            return
        m = _partials(self.enc, wav, max_windows)
        self._mels.extend(m)
        self._owner += [i] * len(m)
        self._run(final=False)

    def _run(self, final: bool) -> None:
        import torch

        while len(self._mels) >= self.batch or (final and self._mels):
            mels, self._mels = self._mels[: self.batch], self._mels[self.batch :]
            owner, self._owner = self._owner[: self.batch], self._owner[self.batch :]
            with torch.inference_mode():
                e = self.enc(torch.from_numpy(np.stack(mels))).numpy()
            np.add.at(self.sums, owner, e)
            np.add.at(self.counts, owner, 1)
            self.windows += len(mels)

    def result(self) -> np.ndarray:
        """(n, 256) L2-normed means of each utterance's windows; NaN rows for empty ones."""
        self._run(final=True)
        out = np.full(self.sums.shape, np.nan, np.float32)
        done = self.counts > 0
        v = self.sums[done] / self.counts[done, None]
        out[done] = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out


def embed_units(wavs: list[np.ndarray], max_windows: list[int | None] | None = None, batch: int = BATCH, stats: dict | None = None) -> np.ndarray:
    """L2-normed embeddings (n, 256) of preprocessed utterances, windows batched across them.

    A row is NaN for an utterance with no audio. ``max_windows[i]`` caps the windows of
    utterance i (None: all of resemblyzer's partials, as ``embed_utterance`` uses).
    ``stats["windows"]`` receives the number of windows embedded.
    """
    emb = UnitEmbedder(len(wavs), batch)
    for i, w in enumerate(wavs):
        emb.add(i, w, max_windows[i] if max_windows else None)
    out = emb.result()
    if stats is not None:
        stats["windows"] = emb.windows
    return out


def embed_units_reference(wavs: list[np.ndarray]) -> np.ndarray:
    """The plain path: resemblyzer's ``embed_utterance`` on each utterance in turn."""
    enc = encoder()
    out = np.full((len(wavs), 256), np.nan, np.float32)
    for i, w in enumerate(wavs):
        if w.size:
            out[i] = enc.embed_utterance(w)
    return out


# -- clustering ------------------------------------------------------------------------------


def cluster(emb: np.ndarray, weights: np.ndarray | None = None, threshold: float = THRESHOLD, min_share: float = MIN_SHARE) -> np.ndarray:
    """Cluster labels 0..k-1 (numbered by first row) for L2-normed embeddings.

    Average-linkage agglomeration on cosine distance, cut at ``threshold``; then clusters whose
    ``weights`` (seconds of speech) add up to less than ``min_share`` of the total are folded
    into the cluster with the nearest centroid.
    """
    n = len(emb)
    if n == 0:
        return np.zeros(0, int)
    if n == 1:
        return np.zeros(1, int)
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    d = np.clip(pdist(emb.astype(np.float64), "cosine"), 0.0, 2.0)
    lab = fcluster(linkage(d, method="average"), t=threshold, criterion="distance") - 1
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    total = w.sum()
    while True:
        ids = np.unique(lab)
        if len(ids) < 2:
            break
        share = np.array([w[lab == c].sum() / total for c in ids])
        small = ids[np.argmin(share)]
        if share.min() >= min_share:
            break
        cents = {c: _unit(emb[lab == c].mean(axis=0)) for c in ids}
        others = [c for c in ids if c != small]
        lab[lab == small] = max(others, key=lambda c: float(cents[c] @ cents[small]))
    return _by_first(lab)


def _by_first(lab: np.ndarray) -> np.ndarray:
    """Labels renumbered by first appearance, so S1 is the first voice heard."""
    remap: dict[int, int] = {}
    for c in lab:
        remap.setdefault(int(c), len(remap))
    return np.array([remap[int(c)] for c in lab], int)


def cluster_many(emb: np.ndarray, weights: np.ndarray, threshold: float = THRESHOLD, max_rows: int = MAX_CLUSTER_ROWS) -> np.ndarray:
    """:func:`cluster` on at most ``max_rows`` rows spread over the input (the pairwise distances
    grow with the square); the other rows join the cluster with the nearest centroid."""
    if len(emb) <= max_rows:
        return cluster(emb, weights, threshold)
    pick = np.array(_pick(len(emb), max_rows))
    lab_s = cluster(emb[pick], weights[pick], threshold)
    cents = np.stack([_unit(emb[pick][lab_s == c].mean(axis=0)) for c in range(int(lab_s.max()) + 1)])
    lab = np.argmax(emb @ cents.T, axis=1)
    lab[pick] = lab_s
    return _by_first(lab)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


# -- the reader's entry points ---------------------------------------------------------------


def label_speakers(
    path: str,
    lines: list[dict],
    has_audio: bool,
    mode: str = "auto",
    threshold: float = THRESHOLD,
    max_windows_per_minute: float = MAX_WINDOWS_PER_MINUTE,
    progress: Callable[[str, float], None] | None = None,
) -> dict:
    """Write ``line["speaker"]`` ("S1", "S2", ...) on every line; return the summary for meta.

    ``mode``: "auto" (label when resemblyzer is installed and there is audio and speech) or
    "off". The summary always has "status" ("ok", "off", "unavailable", "no audio",
    "no speech"); when "ok" also "n" (speakers) and "seconds" (speech per speaker).
    """
    if mode not in ("auto", "off"):
        raise ValueError(f"speakers must be 'auto' or 'off', not {mode!r}")
    if mode == "off":
        return {"status": "off"}
    why = unavailable_reason()
    if why:
        return {"status": "unavailable", "reason": why}
    if not has_audio:
        return {"status": "no audio"}
    report = progress or (lambda stage, frac: None)
    units = plan_units(lines)
    if not units:
        return {"status": "no speech"}
    spans = [(lines[u[0]]["t0"], lines[u[-1]]["t1"]) for u in units]
    speech_min = sum(b - a for a, b in spans) / 60.0
    budget = max(1, int(np.ceil(max_windows_per_minute * max(speech_min, 1 / 60))))
    # more lines than the budget: embed an even spread of them, the rest follow their neighbours
    chosen = _pick(len(units), budget)
    per_line = max(1, min(MAX_WINDOWS_PER_LINE, budget // len(chosen)))
    embedder = UnitEmbedder(len(chosen))
    for n_done, (k, raw) in enumerate(iter_spans(path, [spans[i] for i in chosen])):
        embedder.add(k, preprocess(raw), per_line)
        if n_done % 50 == 0:
            report("speakers", 0.9 * n_done / len(chosen))
    emb = embedder.result()
    ok = [k for k in range(len(chosen)) if not np.isnan(emb[k, 0])]
    if not ok:
        return {"status": "no speech"}
    secs = np.array([spans[chosen[k]][1] - spans[chosen[k]][0] for k in ok])
    lab = cluster_many(emb[ok], secs, threshold)

    # every line takes the label of the embedded unit nearest to it in time
    centres = np.array([(spans[chosen[k]][0] + spans[chosen[k]][1]) / 2 for k in ok])
    emb_t0 = np.array([spans[chosen[k]][0] for k in ok])
    emb_t1 = np.array([spans[chosen[k]][1] for k in ok])
    seconds: Counter = Counter()
    for l in lines:
        gap = np.maximum(0.0, np.maximum(emb_t0 - l["t1"], l["t0"] - emb_t1))
        j = int(np.lexsort((np.abs(centres - (l["t0"] + l["t1"]) / 2), gap))[0])
        l["speaker"] = f"S{lab[j] + 1}"
        seconds[l["speaker"]] += max(0.0, l["t1"] - l["t0"])
    k = int(lab.max()) + 1
    report("speakers", 1.0)
    return {
        "status": "ok",
        "n": k,
        "seconds": {f"S{i + 1}": round(seconds[f"S{i + 1}"], 2) for i in range(k)},
        "model": "resemblyzer",
        "threshold": threshold,
        "lines_embedded": len(ok),
        "windows": embedder.windows,
    }


def speaker_entities(segments: list[Node], title: str) -> list[Entity]:
    """One "speaker" Entity per voice, with a Mention per turn (consecutive lines of one voice
    inside one segment), located at the segment and the turn's first line.

    Names carry the video's title ("Speaker 1 (talk)"): the library merges entities by name
    across sources, and Speaker 1 of one video is nobody in particular in another. A voice named
    on screen (``line["speaker_name"]``, :mod:`.speaker_names`) is "Marketing (talk)" instead,
    with the bare name and "Speaker 1" as aliases, so a lookup of the name finds its turns.
    """
    turns: dict[str, list[Mention]] = {}
    seconds: Counter = Counter()
    named: dict[str, str] = {}
    for seg in segments:
        prev = None
        for l in seg.meta.get("speech", []):
            s = l.get("speaker")
            if not s:
                prev = None
                continue
            if l.get("speaker_name"):
                named.setdefault(s, l["speaker_name"])
            seconds[s] += max(0.0, l["t1"] - l["t0"])
            if s != prev:
                words = l["text"].split()
                surface = " ".join(words[:8]) + ("…" if len(words) > 8 else "")
                turns.setdefault(s, []).append(Mention(node=seg, modality="speech", surface=surface, t=round(float(l["t0"]), 3)))
            prev = s
    out = []
    for s in sorted(turns, key=lambda s: int(s[1:])):
        ms = turns[s]
        name = named.get(s)
        meta = {"label": s, "seconds": round(seconds[s], 2), "turns": len(ms), "count": len(ms), "modalities": ["speech"]}
        if name:
            meta["shown_name"] = name
        out.append(
            Entity(
                name=f"{name or 'Speaker ' + s[1:]} ({title})",
                kind="speaker",
                aliases=[name, f"Speaker {s[1:]}"] if name else [f"Speaker {s[1:]}"],
                mentions=ms,
                meta=meta,
            )
        )
    return out


def summary_line(summary: dict) -> str:
    """The root text's line about voices ("" unless labelling ran)."""
    if summary.get("status") != "ok":
        return ""
    total = sum(summary["seconds"].values()) or 1.0
    names = summary.get("names") or {}
    shares = ", ".join(f"{s}{' (' + names[s] + ')' if s in names else ''} {100 * v / total:.0f}%" for s, v in summary["seconds"].items())
    return f"Speakers: {summary['n']} voice(s) ({shares} of speech)."
