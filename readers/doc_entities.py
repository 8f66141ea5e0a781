"""Entities in documents: names and acronyms found in paragraphs, linked the same way as in video.

Uses the candidate finder shared with the video reader (:mod:`sleuth.readers.names`: capitalised
multi-word names, acronyms, recurring capitalised words) so an entity seen in a report and heard
in a lecture share one normalised key.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from ..core import Entity, Mention, Tree
from .names import acronym_key, candidates, initials, normalise

MAX_ENTITIES = 400


def add_document_entities(tree: Tree) -> None:
    if tree.entities or tree.root.kind != "document":
        return
    groups: dict[str, dict] = {}
    for n in tree.root.walk():
        if n.kind not in ("paragraph", "table") or not n.text:
            continue
        for surface, typ, _ in candidates(n.text):
            key = "acr:" + acronym_key(surface) if typ == "acronym" else normalise(surface)
            if not key or key == "acr:":
                continue
            g = groups.setdefault(key, {"typ": typ, "surfaces": Counter(), "mentions": []})
            g["surfaces"][surface] += 1
            g["mentions"].append(Mention(node=n, modality="text", surface=surface))
    by_init = defaultdict(list)
    for k, g in groups.items():
        if not k.startswith("acr:") and len(k.split()) >= 2:
            by_init[initials(g["surfaces"].most_common(1)[0][0])].append(k)
    for k in [k for k in groups if k.startswith("acr:")]:
        target = by_init.get(k[4:], [])
        if len(target) == 1:
            g = groups.pop(k)
            groups[target[0]]["mentions"] += g["mentions"]
            groups[target[0]]["surfaces"].update(g["surfaces"])
    ents = []
    for k, g in groups.items():
        n = len(g["mentions"])
        # one-off single words are mostly sentence noise; names of two+ words and acronyms count once
        if g["typ"] == "single" and n < 2:
            continue
        name = max(g["surfaces"].items(), key=lambda kv: (len(kv[0].split()) > 1, kv[1], len(kv[0])))[0]
        ents.append(Entity(name=name, kind="org" if g["typ"] == "acronym" else "name",
                           aliases=sorted(s for s in g["surfaces"] if s != name), mentions=g["mentions"],
                           meta={"count": n, "modalities": ["text"]}))
    ents.sort(key=lambda e: -len(e.mentions))
    tree.entities = ents[:MAX_ENTITIES]
