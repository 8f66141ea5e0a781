"""A small corpus with distinct facts, each in a known paragraph of a known file."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "mars.md": """# Mars Mission Report

## 1. Overview

The Ares program began in 2031 with a budget of 4 billion dollars. It was led by Dr. Helena Voss.

The program office sits in Toulouse and employs 320 engineers.

## 2. Launch

The rocket Perseverance Nine launched from Kourou on 14 March 2033. The launch window lasted eleven days.

The crew consisted of six astronauts from four nations.

## 3. Landing

The lander touched down in Jezero crater after a descent of seven minutes.
""",
    "ocean.txt": """Deep Ocean Survey

The Mariana expedition measured a water temperature of 1.4 degrees Celsius at the bottom of the trench.

The submersible Nereus carried two pilots and a biologist. Its hull was made of titanium alloy.

Funding came from the Blue Planet Foundation, which contributed 80 million euros.
""",
    "bees.md": """# Pollinator Study

## Methods

Researchers counted bumblebees on 48 meadows in Bavaria during the summer of 2022.

## Findings

Meadows mown only twice a year hosted three times as many bumblebee colonies as meadows mown monthly.

Pesticide residues were found in 12 percent of the pollen samples.
""",
}

# fact -> (file, words that must appear in the answer)
FACTS = {
    "Who led the Ares program?": ("mars.md", ["Helena Voss"]),
    "How cold is the water at the bottom of the Mariana trench?": ("ocean.txt", ["1.4 degrees"]),
    "What fraction of pollen samples contained pesticide residues?": ("bees.md", ["12 percent"]),
}


def build(root: Path):
    from sleuth import Library

    docs = root / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (docs / name).write_text(text, encoding="utf-8")
    lib = Library(root / ".sleuth")
    rep = lib.add([docs])
    assert rep.count("added") == len(FILES), rep.to_dict()
    return lib


def node_with(lib, source: str, phrase: str) -> int:
    """The id of the paragraph of ``source`` whose text contains ``phrase`` (looked up, not assumed)."""
    for s in lib.sources():
        if s["name"] != source:
            continue
        r = lib.read(s["root_id"], max_tokens=100000)
        for it in r["items"]:
            if phrase in it["text"]:
                return it["id"]
    raise LookupError(f"{phrase!r} not in {source}")
