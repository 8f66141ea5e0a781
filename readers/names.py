"""Finding names, terms and acronyms in a line of text: shared by the document and video readers.

No model: capitalised multi-word names ("World Health Organization", "Karl Marx"), acronyms
("WHO") and lone capitalised words seen mid-sentence, with the normalised keys that let an
entity read in a report and heard in a lecture meet under one key.
"""

from __future__ import annotations

import re

STOP = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
    each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's me
    more most mustn't my myself no nor not now of off on once only or other ought our ours ourselves out over own
    same shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through to too under
    until up upon very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
    which while who who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours
    yourself yourselves yes yeah okay ok oh uh um well like really going know think get got one two three four
    five six seven eight nine ten first second next last many much every thing things way make made see said say
    says want need time times today now new good great right let lets also even still back come came take took
    look looks looking go goes went into onto than within without however therefore thus hence each other another
    here there where every everyone everything something anything nothing someone people kind sort lot lots
    part parts point points slide slides""".split()
)
#: lower-case words allowed inside a capitalised name ("Bank of England", "Leonardo da Vinci")
CONNECT = frozenset("of the for and de da di van von der del la le du on".split())
_CAP = re.compile(r"^[A-Z][a-zA-Z'’\-]*[a-zA-Z]$|^[A-Z]$")
ACRONYM = re.compile(r"^(?:[A-Z][A-Z0-9&]{1,6}|(?:[A-Z]\.){2,6})s?$")
_TOK = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\.\-]*|&")


def normalise(s: str) -> str:
    """The key names are joined by: case, possessives, a leading "the" and punctuation removed."""
    s = s.replace("’", "'").lower()
    s = re.sub(r"'s\b", "", s)
    s = re.sub(r"^the\s+", "", s)
    return " ".join(re.sub(r"[^0-9a-z&]+", " ", s).split())


def acronym_key(s: str) -> str:
    """An acronym's letters, plural "s" and dots dropped ("U.N.", "UNs" -> "UN")."""
    return re.sub(r"[^A-Z0-9&]", "", s.rstrip("s") if s.endswith("s") and s[:-1].isupper() else s)


def initials(name: str) -> str:
    """A name's initials without its connecting words ("Bank of England" -> "BE")."""
    return "".join(w[0].upper() for w in name.split() if w.lower() not in CONNECT and w[:1].isalpha())


def _clean_tok(t: str) -> str:
    return t.strip(".-'’")


def candidates(text: str) -> list[tuple[str, str, int]]:
    """(surface, type, token index) for names and acronyms in one line; type is "name"|"acronym"|"single".

    "single" is a lone capitalised word not at a sentence start (a possible name).
    """
    toks = [(_clean_tok(m.group()), m.start()) for m in _TOK.finditer(text)]
    toks = [(t, p) for t, p in toks if t]
    upper_line = sum(1 for t, _ in toks if t.isupper() and len(t) > 1) > max(2, 0.6 * len(toks))
    out: list[tuple[str, str, int]] = []
    i = 0
    while i < len(toks):
        tok, pos = toks[i]
        if ACRONYM.match(tok) and not upper_line and len(acronym_key(tok)) >= 2:
            out.append((tok, "acronym", i))
            i += 1
            continue
        if _CAP.match(tok) and not tok.isupper() or (upper_line and tok.isalpha() and len(tok) > 1):
            j = i + 1
            while j < len(toks):
                t = toks[j][0]
                if _CAP.match(t) and not ACRONYM.match(t) or (upper_line and t.isalpha()):
                    j += 1
                elif t.lower() in CONNECT and j + 1 < len(toks) and (_CAP.match(toks[j + 1][0]) or upper_line):
                    j += 1
                else:
                    break
            words = [t for t, _ in toks[i:j]]
            while words and words[-1].lower() in CONNECT:
                words.pop()
            # a sentence-initial function word is not part of the name ("The Bank of England")
            sent_start = i == 0 or re.search(r"[.!?:]\s*$", text[: pos])
            while words and words[0].lower() in STOP:
                words.pop(0)
                sent_start = False
            if upper_line:
                words = [w.capitalize() if w.lower() not in CONNECT else w.lower() for w in words]
            if len(words) >= 2:
                out.append((" ".join(words), "name", i))
            elif len(words) == 1 and not sent_start and words[0].lower() not in STOP and len(words[0]) > 2:
                out.append((words[0], "single", i))
            i = max(j, i + 1)
            continue
        i += 1
    return out
