"""The embedding model file onnxruntime loads: the shipped int8 MiniLM with its embedding tables
dequantised after the lookup instead of before it.

The shipped graph turns each int8 weight into float32 (``Cast`` then ``Mul`` by its scale)
before using it, and onnxruntime folds those into float32 constants when it loads the model:
fast, but the 30,522 x 384 word-embedding table becomes 47 MB of float32 of which a batch reads
a few hundred rows. :func:`dequantise_after_gather` rewrites each ``Gather`` from such a table to
gather the int8 rows and their scales first and then ``Cast`` and ``Mul`` them: the same two
operations on each element that reaches the output, so embeddings are bit-for-bit the same
(tests/test_embed_model.py compares them) while the table stays int8 in memory (measured: about
35 MB less resident per process and 26 MB less at load). The linear layers keep their folded
float32 weights: their matrix products run on them.

The rewritten model is written once under ``$SLEUTH_CACHE/minilm-int8/`` with its sha256 beside
it; where that folder cannot be written it is rebuilt in memory for each session (onnx import
and the model's bytes, about 60 MB for a moment).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

#: bump when the rewrite changes, so an old cached file is not used
REWRITE_VERSION = 1

_lock = threading.Lock()


def cache_dir() -> Path:
    base = os.environ.get("SLEUTH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sleuth")
    return Path(base) / "minilm-int8"


def dequantise_after_gather(model) -> int:
    """Rewrite, in place, ``Gather(Mul(Cast(Q), S), ids)`` with int8 initializer ``Q`` and a
    per-row (or single) scale initializer ``S`` into ``Mul(Cast(Gather(Q, ids)), Gather(S, ids))``.

    Only tables gathered along their rows (axis 0) whose dequantised form feeds nothing else are
    rewritten. Returns how many gathers were rewritten."""
    from onnx import TensorProto, helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}
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


def rewritten_bytes(src: Path) -> bytes:
    """The shipped model at ``src``, rewritten (see :func:`dequantise_after_gather`)."""
    import onnx

    model = onnx.load(str(src))
    if dequantise_after_gather(model) == 0:
        raise RuntimeError(f"{src}: no int8 embedding table to rewrite (an unexpected model)")
    onnx.checker.check_model(model)
    return model.SerializeToString()


def prepared_model(src: Path, src_sha256: str) -> str | bytes:
    """What to hand onnxruntime: the cached rewritten model's path, else its bytes, else (onnx
    missing, or a model this rewrite does not fit) the shipped file's path.

    ``src`` must already be checked against ``src_sha256``; the cached file is named after it
    and checked against the sha256 written beside it, and rebuilt when that does not match."""
    from ..core import sha256_file

    d = cache_dir()
    target = d / f"{src_sha256[:16]}-v{REWRITE_VERSION}.onnx"
    stamp = target.with_suffix(".sha256")
    with _lock:
        try:
            if target.is_file() and stamp.is_file() and sha256_file(target) == stamp.read_text().strip():
                return str(target)
        except OSError:
            pass
        try:
            data = rewritten_bytes(src)
        except (ImportError, RuntimeError):
            return str(src)
        tmp = None
        try:
            import hashlib

            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".model.")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            Path(tmp + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
            os.replace(tmp, target)  # atomic: a concurrent process never reads half a model
            os.replace(tmp + ".sha256", stamp)
            return str(target)
        except OSError:
            if tmp:
                for leftover in (tmp, tmp + ".sha256"):
                    Path(leftover).unlink(missing_ok=True)
            return data
