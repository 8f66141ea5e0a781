"""Terminal output that never interprets what it prints.

Document text, file names, model output and error messages are untrusted: Rich would read
``[...]`` in them as style tags (a crash on ``[/etc/hosts]``, a hidden hyperlink from
``[link=…]…[/link]``) and a terminal would obey escape sequences in them (OSC 8 links, cursor
moves). So both consoles have markup and highlighting off, styles are attached to our own
fixed words only (:func:`say`), and control characters are removed from every untrusted part.
When the stream is not a terminal, lines are not wrapped: one failure is one log line.
"""

from __future__ import annotations

import re
import sys
from typing import Union

from rich.console import Console
from rich.text import Text

# C0 controls except tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI); and the
# bidirectional overrides, embeddings, isolates and marks, which reorder what follows them on the
# line: "report\u202efdp.exe" would show as "reportexe.pdf".
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Line breaks inside what must stay one line: a file name or a label in a table or a list.
_BREAKS = re.compile("\r\n|[\n\r\t\x0b\x0c\x85\u2028\u2029]")
_BREAK_SHOWN = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\r\n": "\\r\\n"}

Part = Union[str, tuple[str, str]]


def clean(text: object) -> str:
    """``text`` as a string with control characters (escape sequences' introducers) and bidi
    controls removed."""
    return _CONTROL.sub("", str(text))


def one_line(text: object) -> str:
    """``text`` cleaned, with its line breaks and tabs shown as ``\\n``, ``\\r``, ``\\t``: a file
    name with a newline in it stays one visible name and cannot fake a row of a table."""
    return clean(_BREAKS.sub(lambda m: _BREAK_SHOWN.get(m.group(0), " "), str(text)))


def _console(stream) -> Console:
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return Console(file=stream, markup=False, highlight=False, emoji=False, soft_wrap=not tty)


class _Lazy:
    """A console bound to the stream current at print time (tests swap sys.stdout/sys.stderr)."""

    def __init__(self, name: str):
        self._name = name
        self._cache: tuple[object, Console] | None = None

    def get(self) -> Console:
        stream = getattr(sys, self._name)
        if self._cache is None or self._cache[0] is not stream:
            self._cache = (stream, _console(stream))
        return self._cache[1]

    def __getattr__(self, attr):
        return getattr(self.get(), attr)


out = _Lazy("stdout")
err = _Lazy("stderr")


def text(*parts: Part) -> Text:
    """A Text from plain strings (untrusted, cleaned) and ``(string, style)`` pairs."""
    t = Text()
    for p in parts:
        if isinstance(p, tuple):
            t.append(clean(p[0]), style=p[1])
        else:
            t.append(clean(p))
    return t


def say(*parts: Part, stream: _Lazy = out) -> None:
    stream.print(text(*parts))


def error(message: object, label: str = "error:") -> None:
    """One line on stderr: ``error: <message>`` with the message shown verbatim."""
    err.print(text((label, "red"), " ", " ".join(clean(message).split())))
