"""sleuth: agentic retrieval over long documents and long videos, with located citations."""

__version__ = "0.1.0"

import os as _os

# onnxruntime (embeddings, OCR, voice activity) records a telemetry event with a device id, the
# OS and the Python path in ~/.cache/Microsoft on import, for later upload. This switch is read
# when onnxruntime loads, so it is set here, before any sleuth module imports it; sessions also
# call onnxruntime.disable_telemetry_events() (index.embed.onnx_session_options).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from .core import Entity, Locator, Mention, Node, ReaderError, Tree  # noqa: E402

__all__ = ["Entity", "Library", "Locator", "Mention", "Node", "ReaderError", "Tree", "__version__"]


def __getattr__(name: str):
    # Library pulls in faiss, onnxruntime and SQLAlchemy; import it lazily so that
    # `import sleuth.kernels` or `import sleuth.eval.metrics` stays light.
    if name == "Library":
        from .library import Library

        return Library
    raise AttributeError(name)
