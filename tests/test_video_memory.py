"""Memory of the speech path stays bounded by a piece, not by the recording's length (fast)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from sleuth.readers.video import speech

fw = pytest.importorskip("faster_whisper.feature_extractor")


def _signal(seconds: float, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(t)) + 0.05 * rng.standard_normal(t.size)
    x[: t.size // 5] = 0  # a silent start exercises the max() - 8 floor
    return x.astype(np.float32)


@pytest.mark.parametrize("n", [361, 1000, 16000 * 7 + 123])
@pytest.mark.parametrize("chunk", [7, 100, 6000])
def test_log_mel_matches_the_library(n, chunk):
    fe = fw.FeatureExtractor()
    x = _signal(n / 16000)
    ref = fe(x)
    got = speech.log_mel(fe, x, chunk_frames=chunk)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    # the mel product over fewer columns may round differently in the last bit
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_log_mel_peak_is_a_piece_not_the_recording():
    fe = fw.FeatureExtractor()
    x = _signal(120.0)
    out_bytes = 80 * (len(x) // 160) * 4  # the kept 80-band features
    tracemalloc.start()
    try:
        speech._ChunkedFeatures(fe)(x, chunk_length=30)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fe(x, chunk_length=30)
        _, ref_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 120 s is 12,000 frames: the library holds ~10 KB a frame at once (~120 MB here); a
    # piece of MEL_CHUNK_FRAMES costs ~14 MB beside the kept output, whatever the length
    assert ref_peak > 80e6
    assert peak < out_bytes + 20e6, (peak, ref_peak)


def test_chunked_features_keep_the_extractor_attributes():
    fe = fw.FeatureExtractor()
    wrapped = speech._ChunkedFeatures(fe)
    wrapped(_signal(1.0), chunk_length=20)
    assert wrapped.nb_max_frames == fe.nb_max_frames == 2000
    assert wrapped.time_per_frame == fe.time_per_frame and wrapped.sampling_rate == 16000
