"""sleuth: agentic retrieval over long documents and long videos, with located citations."""

__version__ = "0.1.0"

from .core import Entity, Locator, Mention, Node, ReaderError, Tree  # noqa: E402

__all__ = ["Entity", "Library", "Locator", "Mention", "Node", "ReaderError", "Tree", "__version__"]


def __getattr__(name: str):
    # Library pulls in faiss, onnxruntime and SQLAlchemy; import it lazily so that
    # `import sleuth.kernels` or `import sleuth.eval.metrics` stays light.
    if name == "Library":
        from .library import Library

        return Library
    raise AttributeError(name)
