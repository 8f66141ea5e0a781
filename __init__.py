"""sleuth: agentic retrieval over long documents and long videos, with located citations."""

__version__ = "0.1.0"

import os as _os
import sys as _sys

# onnxruntime (embeddings, OCR, voice activity) records a telemetry event with a device id, the
# OS and the Python path in ~/.cache/Microsoft on import, for later upload. This switch is read
# when onnxruntime loads, so it is set here, before any sleuth module imports it; sessions also
# call onnxruntime.disable_telemetry_events() (index.embed.onnx_session_options).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# The public surface is what the README uses: the Library (and the version). The data types live
# in sleuth.core; their names here are kept one release, with a DeprecationWarning.
__all__ = ["Library", "__version__"]
_FROM_CORE = frozenset({"Entity", "Locator", "Mention", "Node", "ReaderError", "Tree"})

# Modules that moved after 0.1.0 (one room per concept): the old import paths keep working for one release,
# with a DeprecationWarning, and give the very same module object (a patch through either path hits
# both).
_MOVED = {
    "sleuth.terminal": "sleuth.commands.terminal",
    "sleuth.cli_conventions": "sleuth.commands.conventions",
    "sleuth.cli_progress": "sleuth.commands.progress",
    "sleuth.cli_manage": "sleuth.commands.manage",
    "sleuth.mcp_server": "sleuth.serve.mcp",
    "sleuth.demo": "sleuth.samples.demo",
    "sleuth.samples_video": "sleuth.samples.video",
}


class _MovedFinder:
    """Finds a moved module under its old name and hands back the module at its new one."""

    specs: dict = {}

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname not in _MOVED:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, _MovedFinder)

    @staticmethod
    def create_module(spec):
        import importlib
        import warnings

        new = _MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=3)
        module = importlib.import_module(new)
        _MovedFinder.specs[new] = module.__spec__
        return module

    @staticmethod
    def exec_module(module):
        # The module ran when it was imported under its new name; the import system has just
        # stamped the old name's spec on it, which reload() and pickle would follow: put its own back.
        module.__spec__ = _MovedFinder.specs[module.__name__]


if not any(isinstance(f, type) and f.__name__ == "_MovedFinder" for f in _sys.meta_path):
    _sys.meta_path.append(_MovedFinder)


def __getattr__(name: str):
    # Library pulls in faiss, onnxruntime and SQLAlchemy; import it lazily so that
    # `import sleuth.kernels` or `import sleuth.eval.metrics` stays light.
    if name == "Library":
        from .library import Library

        return Library
    if name in _FROM_CORE:
        import warnings

        from . import core

        warnings.warn(f"sleuth.{name} moved to sleuth.core.{name}; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(core, name)
    raise AttributeError(f"module 'sleuth' has no attribute {name!r}")
