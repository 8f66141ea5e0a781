"""The embedding model file onnxruntime loads: the shipped int8 MiniLM, prepared once so that
loading it costs little memory, with bit-for-bit the same outputs.

The shipped graph turns each int8 weight into float32 (``Cast`` then ``Mul`` by its scale)
before using it, and onnxruntime folds those into float32 constants every time it loads the
model: fast to run, but the 30,522 x 384 word-embedding table becomes 47 MB of float32 of which a
batch reads a few hundred rows, and folding briefly holds each weight three times (measured: a
load peaked 126 MB above where it started and kept 63 MB). Two rewrites, done here once:

- :func:`dequantise_after_gather`: a ``Gather`` from such a table gathers the int8 rows and their
  scales first, then casts and multiplies them, so the table stays int8 in memory;
- :func:`fold_weights`: every other ``Cast``/``Mul`` of a constant is computed here with numpy
  and stored as the float32 constant onnxruntime would have made.

Both do the same IEEE float32 operations on the same values as the shipped graph, so the
embeddings are identical (tests/test_memory.py compares the hidden states for equality); a load
then peaks ~53 MB above where it started and keeps 51 MB. The prepared model (54 MB) is written once
under ``$SLEUTH_CACHE/minilm-int8/`` with its sha256 beside it; where that folder cannot be
written it is prepared in memory for each session (onnx and the model for a moment, ~100 MB).

The fast variant (``int8=True``, what indexing and search use) goes one step further: its
matrix products run in int8 (:func:`quantise_matmuls`, onnxruntime's own dynamic quantisation:
activations quantised per batch, weights per output column), which VNNI / AVX2 integer kernels
run ~2x faster than float32 here. Its vectors are close to the exact ones, not equal (cosine
0.99 on average over real paragraphs, tests/test_memory.py), and evidence recall on the dev
PDFs was measured unchanged (docs/ingest.md). The exact variant stays the reference.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

#: bump when the rewrite changes, so an old cached file is not used
REWRITE_VERSION = 3

_lock = threading.Lock()


def cache_dir() -> Path:
    base = os.environ.get("SLEUTH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sleuth")
    return Path(base) / "minilm-int8"


def _graph_index(g) -> tuple[dict, dict, dict[str, list], set[str]]:
    """Initializers by name, the node producing each value, the nodes reading each value, and the
    graph's output names."""
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return inits, producer, consumers, {o.name for o in g.output}


def dequantise_after_gather(model) -> int:
    """Rewrite, in place, ``Gather(Mul(Cast(Q), S), ids)`` with int8 initializer ``Q`` and a
    per-row (or single) scale initializer ``S`` into ``Mul(Cast(Gather(Q, ids)), Gather(S, ids))``.

    Only tables gathered along their rows (axis 0) whose dequantised form feeds nothing else are
    rewritten. Returns how many gathers were rewritten."""
    from onnx import TensorProto, helper

    g = model.graph
    inits, producer, consumers, graph_outputs = _graph_index(g)
    drop, replace = set(), {}
    for n in g.node:
        if n.op_type != "Gather" or any(a.name == "axis" and a.i != 0 for a in n.attribute):
            continue
        table = n.input[0]
        mul = producer.get(table)
        if mul is None or mul.op_type != "Mul" or table in graph_outputs or len(consumers[table]) != 1:
            continue
        cast = producer.get(mul.input[0])
        scale = inits.get(mul.input[1])
        if cast is None or cast.op_type != "Cast" or scale is None or len(consumers[cast.output[0]]) != 1:
            continue
        q = inits.get(cast.input[0])
        if q is None or q.data_type != TensorProto.INT8 or len(q.dims) != 2:
            continue
        per_row = list(scale.dims) == [q.dims[0], 1]
        if not per_row and list(scale.dims) not in ([], [1]):
            continue
        out = n.output[0]
        nodes = [helper.make_node("Gather", [q.name, n.input[1]], [out + "_q"], axis=0),
                 helper.make_node("Cast", [out + "_q"], [out + "_f"], to=TensorProto.FLOAT)]
        if per_row:
            nodes.append(helper.make_node("Gather", [scale.name, n.input[1]], [out + "_scale"], axis=0))
            nodes.append(helper.make_node("Mul", [out + "_f", out + "_scale"], [out]))
        else:
            nodes.append(helper.make_node("Mul", [out + "_f", scale.name], [out]))
        drop.update((id(mul), id(cast)))
        replace[id(n)] = nodes
    if not replace:
        return 0
    new = []
    for n in g.node:
        if id(n) in drop:
            continue
        new.extend(replace.get(id(n), [n]))
    del g.node[:]
    g.node.extend(new)
    return len(replace)


def fold_weights(model) -> int:
    """Replace, in place, each ``Mul(Cast(Q), S)`` of initializers ``Q`` (int8) and ``S`` by
    the float32 initializer it computes (numpy's float32 multiply is IEEE's, as onnxruntime's
    is). Initializers nothing reads any more are dropped. Returns how many were folded."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    g = model.graph
    inits, producer, consumers, graph_outputs = _graph_index(g)
    drop, new = set(), []
    for n in g.node:
        if n.op_type != "Mul" or n.output[0] in graph_outputs:
            continue
        cast = producer.get(n.input[0])
        scale = inits.get(n.input[1])
        if cast is None or cast.op_type != "Cast" or scale is None or len(consumers.get(cast.output[0], ())) != 1:
            continue
        q = inits.get(cast.input[0])
        to = next((a.i for a in cast.attribute if a.name == "to"), None)
        if q is None or q.data_type != TensorProto.INT8 or to != TensorProto.FLOAT or scale.data_type != TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(q).astype(np.float32) * numpy_helper.to_array(scale)
        new.append(numpy_helper.from_array(w.astype(np.float32, copy=False), n.output[0]))
        drop.update((id(n), id(cast)))
    if not new:
        return 0
    kept = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(new)
    used = {i for n in g.node for i in n.input} | graph_outputs
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return len(new)


def rewritten(src: Path):
    """The shipped model at ``src`` as an onnx ModelProto, prepared (:func:`dequantise_after_gather`,
    then :func:`fold_weights`)."""
    import onnx

    model = onnx.load(str(src))
    if dequantise_after_gather(model) == 0:
        raise RuntimeError(f"{src}: no int8 embedding table to rewrite (an unexpected model)")
    fold_weights(model)
    onnx.checker.check_model(model)
    return model


def quantise_matmuls(model):
    """The prepared float32 model with every MatMul by a constant weight quantised to int8 by
    onnxruntime's ``quantize_dynamic`` (per output column, as the shipped int8 weights are
    scaled, so the weights it stores are the shipped ones). Returns a new ModelProto."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="sleuth-quantise-") as d:
        out = Path(d) / "int8.onnx"
        quantize_dynamic(model, out, op_types_to_quantize=["MatMul"], per_channel=True,
                         weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
        return onnx.load(str(out))


def rewritten_bytes(src: Path, int8: bool = False) -> bytes:
    """:func:`rewritten` (then :func:`quantise_matmuls` with ``int8``), serialised with its
    weights inside."""
    model = rewritten(src)
    return (quantise_matmuls(model) if int8 else model).SerializeToString()


def _digest(folder: Path) -> str:
    from ..core import sha256_file

    return sha256_file(folder / "model.onnx") + sha256_file(folder / "model.data")


def prepared_model(src: Path, src_sha256: str, int8: bool = False) -> str | bytes:
    """What to hand onnxruntime: the cached prepared model's path, else its bytes, else (onnx
    missing, or a model these rewrites do not fit) the shipped file's path. ``int8``: the
    variant whose matrix products run in int8 (:func:`quantise_matmuls`), cached beside.

    The cache is a folder named after ``src_sha256`` (``src`` must already be checked against
    it) holding the graph, its weights in a separate ``model.data`` (onnxruntime maps that file
    instead of copying it: ~25 MB less at load) and their sha256, checked on every use; a
    damaged copy is rebuilt."""
    import shutil

    version = f"{src_sha256[:16]}-v{REWRITE_VERSION}"
    d = cache_dir() / (version + ("-int8" if int8 else ""))
    with _lock:
        try:
            if (d / "sha256").read_text().strip() == _digest(d):
                return str(d / "model.onnx")
        except OSError:
            pass
        try:
            model = rewritten(src)
            if int8:
                model = quantise_matmuls(model)
        except (ImportError, RuntimeError):
            return str(src)
        tmp = None
        try:
            import onnx

            d.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=d.parent, prefix=".prepare-"))
            onnx.save(model, str(tmp / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                      location="model.data", size_threshold=4096)
            (tmp / "sha256").write_text(_digest(tmp) + "\n")
            if d.exists():  # damaged (checked above): replaced whole, never edited in place
                shutil.rmtree(d)
            os.replace(tmp, d)  # atomic: a concurrent process sees the old folder, none, or this one
            tmp = None
            for old in d.parent.glob(f"{src_sha256[:16]}-v*"):  # earlier versions of the rewrite
                if old.name not in (version, version + "-int8"):
                    shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
            return str(d / "model.onnx")
        except OSError:
            if d.is_dir():
                try:  # another process finished the same folder first
                    if (d / "sha256").read_text().strip() == _digest(d):
                        return str(d / "model.onnx")
                except OSError:
                    pass
            return rewritten_bytes(src, int8)  # saving moved the weights out of `model`: rebuild
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
