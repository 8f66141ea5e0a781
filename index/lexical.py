"""BM25 with tantivy: a sidecar index of every node and entity, beside the faiss files.

Why tantivy and not SQLite FTS5: FTS5 scores every row an OR query matches, so at 100K
paragraphs a question's BM25 cost 6-20 ms even with its common words pruned; tantivy's
block-max WAND scores only rows that can still enter the top k (~1 ms, no pruning, every word
counts). Like the faiss files it is derived from the database, which stays the truth: each write
is committed to the database first and to this index second, stamped with the database
generation, and a run killed in between is healed from the nodes on the next open
(``index.lexical_sync``).

Beside the nodes, a second small index (``docs/``) holds one row per source: its whole text, so
whole documents can be ranked by BM25 with statistics of their own (a row thousands of times
longer than a paragraph would skew the paragraphs' average length if it shared their index).

CJK text is cut into overlapping character bigrams before tantivy sees it (its simple tokenizer
would keep a whole run of CJK characters as one token). Words are lower-cased, ASCII-folded and
Porter2-stemmed on both sides.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import tantivy

from ..readers.textsplit import CJK_RE

STOPWORDS = frozenset(
    """a an and are as at be but by did do does for from had has have how i if in into is it its
    of on or over so such than that the their them then there these they this to under up was
    were what when where which while who whom whose why will with within would you your about
    after again all also am any because been before being between both can could each few
    more most no nor not now only other our out own same should some still through too very
    says said tell me give list name find show much many""".split()
)

_WORD_RE = re.compile(r"[\w\u3400-\u9fff]+", re.UNICODE)

#: characters per value when a long text goes into tantivy (see Lexical.apply)
PIECE_CHARS = 1 << 16


def text_pieces(text: str, n: int | None = None) -> list[str]:
    """``text`` cut into pieces of about ``n`` (default :data:`PIECE_CHARS`) characters, at
    whitespace so that no word is cut (a piece runs on to the next whitespace)."""
    n = n or PIECE_CHARS
    out, i = [], 0
    while i < len(text):
        j = min(len(text), i + n)
        if j < len(text):
            k = text.find(" ", j) if not text[j].isspace() else j
            ws = [x for x in (k, text.find("\n", j), text.find("\t", j)) if x >= 0]
            j = min(ws) if ws else len(text)
        out.append(text[i:j])
        i = j
    return out


def doc_pieces(title: str | None, body: str | list[str] | None) -> Iterator[str]:
    """A whole document's text for the docs index, segmented, in pieces of about PIECE_CHARS
    characters: ``body`` is a text or a list of paragraphs (joined by newlines). Paragraphs are
    gathered a piece at a time, so no copy of the whole text is ever made, and the words are the
    same as the whole text's (pieces end at whitespace, where no word runs on)."""
    parts = body if isinstance(body, list) else [body or ""]
    buf, size = [title or ""], len(title or "")
    for part in parts:
        if size >= PIECE_CHARS:
            yield from text_pieces(segment("\n".join(buf)))
            buf, size = [], 0
        buf.append(part)
        size += len(part) + 1
    if buf:
        yield from text_pieces(segment("\n".join(buf)))


_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def _bigrams(m: re.Match) -> str:
    run = m.group()
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "


def segment(text: str) -> str:
    """Text as the lexical index should see it: each run of CJK characters as its overlapping
    character bigrams ("北京大学" → "北京 京大 大学"; a lone character stays itself), the rest as it is.

    Bigrams, as Lucene's CJK analyzer indexes them, rather than jieba's dictionary words: no
    dictionary in memory (jieba's took 66 MB for good the first time a file held one Chinese
    name, jieba-rs' 33 MB), the same cut for a query and a text whatever surrounds them, and on
    LongBench's Chinese tasks evidence recall as good as with jieba's words (README)."""
    if not CJK_RE.search(text):
        return text
    return _CJK_RUN.sub(_bigrams, text)


# Chinese function words, one or two characters: as query terms they carry no topic.
ZH_STOPWORDS = frozenset("的 了 是 在 和 与 及 或 也 都 就 而 但 并 被 把 对 从 向 为 以 于 这 那 其 之 个 中 上 下 等 着 将 已 又 还 很 更 最 有 没有 一个 我们 他们 可以 进行 通过 由于 因为 所以 如果 没有".split())


def query_terms(query: str, max_terms: int = 64) -> list[str]:
    terms, seen = [], set()
    for w in _WORD_RE.findall(segment(query).lower()):
        if w in STOPWORDS or w in ZH_STOPWORDS or w in seen or (len(w) < 2 and not CJK_RE.match(w)):
            continue
        seen.add(w)
        terms.append(w)
    return terms[:max_terms]


_IDENT_RE = re.compile(r"\b(?=[\w\-./]*\d)[A-Za-z0-9][\w\-./]*[A-Za-z0-9]\b|\b[A-Z]{2,}[A-Za-z]*\b")


def identifiers(query: str) -> list[str]:
    """Code-like tokens (MB-1074, 3.2, ISO-9001, WHO): words a user means literally."""
    out = []
    for m in _IDENT_RE.finditer(query):
        tok = m.group().strip("./-")
        if len(tok) >= 2 and tok.lower() not in STOPWORDS and tok not in out:
            out.append(tok)
    return out


TIERS = ("fine", "coarse", "source", "entity")
#: the index's format. 3: paragraphs carry their neighbours' words (``ctx``) and a ``docs/``
#: index holds whole sources. 4: CJK text as character bigrams (segment), not jieba's words.
#: An index of an older format is searched as it is until the library can rebuild it from the database (index/lexical_sync.py heal): its stamp reads as unsynced.
FORMAT = 4
DOCS = "docs"
ANALYZER = "sleuth_en"
TITLE_BOOST = 2.0  # a word in a node's title (its section path) counts twice
#: weight of a word found only in a paragraph's neighbours on its page (its ``ctx``): PDF readers
#: cut a page into fragments ("Coffee quality" / "The quality levels influence the brewing." /
#: "Quality levels 1"), none of which matches a question alone. Measured in docs/locate.md
CTX_BOOST = 0.3
#: neighbours on each side, in reading order on the same page, that make a paragraph's ``ctx``
CTX_WINDOW = 2


def _schema(fmt: int = FORMAT) -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", indexed=True, fast=True)
    sb.add_text_field("tier", tokenizer_name="raw")
    sb.add_text_field("title", tokenizer_name=ANALYZER)
    sb.add_text_field("body", tokenizer_name=ANALYZER)
    if fmt >= 3:
        sb.add_text_field("ctx", tokenizer_name=ANALYZER)
    return sb.build()


def _tokens(query: str) -> list[str]:
    """The index's tokens of a query's terms (stopwords out, segmented, stemmed)."""
    return [tok for t in query_terms(query) for tok in analyze(t)]


def _hits(index: tantivy.Index, query, k: int | None) -> list[tuple[int, float]]:
    """(id, score) of the top k matches of ``query`` (every match when k is None), best first."""
    searcher = index.searcher()
    # tantivy allocates k slots before it looks: a k beyond the documents there (10**9 from a
    # caller) aborted the process for want of memory
    k = searcher.num_docs if k is None else min(int(k), searcher.num_docs)
    if k <= 0:
        return []
    res = searcher.search(query, k, count=False)
    if not res.hits:
        return []
    ids = searcher.fast_field_values("id", [a for _, a in res.hits])
    return [(int(i), float(sc)) for (sc, _), i in zip(res.hits, ids)]


def _docs_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", indexed=True, fast=True)
    sb.add_text_field("body", tokenizer_name=ANALYZER)
    return sb.build()


@lru_cache(maxsize=1)
def _analyzer() -> tantivy.TextAnalyzer:
    F = tantivy.Filter
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(F.remove_long(40)).filter(F.lowercase())
            .filter(F.ascii_fold()).filter(F.stemmer("english")).build())


def analyze(text: str) -> list[str]:
    """The index's own tokens for a text (segmented, folded, stemmed)."""
    return _analyzer().analyze(segment(text))


#: tantivy's indexing buffer: it fills up to this before writing a segment, and one file is
#: committed at a time anyway. 64 MB was a fifth of a text file's whole indexing budget; 15 MB
#: is tantivy's floor (per thread) and flushes a 5 MB text's words in a few segments, not one.
WRITER_HEAP = 15_000_000

class Lexical:
    """Reading from any thread; writing only inside the library's write lock."""

    def __init__(self, directory: str | os.PathLike, *, read_only: bool = False):
        self.dir = Path(directory)
        if read_only:
            # tantivy takes a lock file even to read, which a read-only mount refuses: search a
            # private copy (removed at exit). The stamp is still read from the library.
            import shutil
            import tempfile
            import weakref

            copy = Path(tempfile.mkdtemp(prefix="sleuth-lexical-")) / "lexical"
            # contents only, not permission bits: a copy of a folder made read-only by chmod
            # would be read-only too, and tantivy could not take its lock file there either
            shutil.copytree(self.dir, copy, copy_function=shutil.copyfile)
            for d, _, _ in os.walk(copy):
                os.chmod(d, 0o700)
            weakref.finalize(self, shutil.rmtree, copy.parent, True)
            where = copy
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            where = self.dir
        self._where = where
        self.read_only = read_only
        self._writer = self._docs_writer = None
        self._lock = threading.RLock()
        self._open()

    def _open(self) -> None:
        """Open both indexes: the nodes' with the current schema, or an older format's with its own."""
        for fmt in (FORMAT, 2):
            try:
                self.schema = _schema(fmt)
                self.index = tantivy.Index(self.schema, path=str(self._where), reuse=True)
                self.format = fmt
                break
            except ValueError as e:
                if "schema does not match" not in str(e) or fmt == 2:
                    raise
        # a library made before the docs index has none yet (read-only: an empty one in the copy)
        (self._where / DOCS).mkdir(exist_ok=True)
        self.docs_schema = _docs_schema()
        self.docs = tantivy.Index(self.docs_schema, path=str(self._where / DOCS), reuse=True)
        # Tokenizers are not stored in the index: register on every open, before any use.
        self.index.register_tokenizer(ANALYZER, _analyzer())
        self.docs.register_tokenizer(ANALYZER, _analyzer())
        self._seen = self._stamp_mtime()

    # -- writing ---------------------------------------------------------------------------
    def _w(self):
        if self._writer is None:
            self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        return self._writer

    def apply(self, deletes: list[tuple[int, int]], rows: list[tuple], generation: int) -> None:
        """Drop id ranges from both indexes, add rows (node_id, title, body, tier[, ctx]): a row
        of tier "doc" (a whole source under its root node's id) goes to the docs index. Commit
        (the docs index first), stamp the generation."""
        with self._lock:
            if self._docs_writer is None:
                self._docs_writer = self.docs.writer(heap_size=WRITER_HEAP, num_threads=1)
            w, dw = self._w(), self._docs_writer
            for lo, hi in deletes:
                w.delete_documents_by_query(tantivy.Query.range_query(self.schema, "id", tantivy.FieldType.Integer, lo, hi))
                dw.delete_documents_by_query(tantivy.Query.range_query(self.docs_schema, "id", tantivy.FieldType.Integer, lo, hi))
            # A kill between the two commits leaves the stamp behind: the next open heals both.
            try:
                # the docs index is filled and committed before the nodes go in: the two writers'
                # buffers are then never full at once (a 5 MB text's rows filled both, +38 MB)
                for i, title, body, tier, *ctx in rows:
                    if tier == "doc":
                        doc = tantivy.Document(id=int(i))
                        for piece in doc_pieces(title, body):
                            doc.add_text("body", piece)
                        dw.add_document(doc)
                        # tantivy indexes a copy of it in its own thread: the Python document
                        # (a 5 MB Chinese text's bigrams, 14 MB) is freed now, not kept through
                        # that indexing and the commit and the nodes' indexing after it
                        del doc
                dw.commit()
                for i, title, body, tier, *ctx in rows:
                    if tier == "doc":
                        continue
                    if tier not in TIERS:
                        raise ValueError(f"unknown lexical tier {tier!r}")
                    fields = dict(id=int(i), tier=tier, title=segment(title or ""), body=segment(body or ""))
                    if ctx and ctx[0] and self.format >= 3:
                        fields["ctx"] = segment(ctx[0])
                    w.add_document(tantivy.Document(**fields))
                w.commit()
                self._write_stamp(generation)
            except BaseException:
                # a failed commit (a full disk) leaves the writers in no known state: drop them
                # and read what was last committed; the stamp, not moved, has the library heal
                self._discard_writers()
                raise
            self.reload()

    def _discard_writers(self) -> None:
        for name in ("_writer", "_docs_writer"):
            w = getattr(self, name)
            setattr(self, name, None)
            if w is not None:
                try:
                    w.rollback()
                except Exception:  # noqa: BLE001 - dropping it releases its lock all the same
                    pass
                del w
        try:
            self.reload()
        except Exception:  # noqa: BLE001 - searches keep the readers they had
            pass

    def close_writer(self) -> None:
        """Release tantivy's writer locks (at the end of an index run), letting merges finish."""
        with self._lock:
            for name in ("_writer", "_docs_writer"):
                w = getattr(self, name)
                if w is not None:
                    setattr(self, name, None)
                    w.wait_merging_threads()

    def upgrade(self) -> None:
        """Replace an index of an older format by an empty one of the current format. Only inside
        the library's write lock: the caller refills it from the database."""
        import shutil

        with self._lock:
            self.close_writer()
            self.index = self.docs = None
            for p in self._where.iterdir():
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.name != "sleuth-lexical.json":
                    p.unlink()
            self._open()

    def _write_stamp(self, generation: int) -> None:
        tmp = self.dir / ".sleuth-lexical.json.tmp"
        try:
            tmp.write_text(json.dumps({"generation": int(generation), "format": FORMAT}))
            os.replace(tmp, self.dir / "sleuth-lexical.json")
        except BaseException:
            tmp.unlink(missing_ok=True)  # a half-written stamp must not stay beside the index
            raise

    def generation(self) -> int:
        """The library generation the index holds; -1 if never stamped or stamped by an older
        format (which the library then heals)."""
        if self.format < FORMAT:
            return -1
        try:
            stamp = json.loads((self.dir / "sleuth-lexical.json").read_text())
            return int(stamp["generation"]) if stamp.get("format", 1) >= FORMAT else -1
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return -1

    def _stamp_mtime(self) -> int:
        try:
            return (self.dir / "sleuth-lexical.json").stat().st_mtime_ns
        except OSError:
            return 0

    def reload(self) -> None:
        self.index.reload()
        self.docs.reload()
        self._seen = self._stamp_mtime()

    def refresh(self) -> None:
        """See commits made by other processes (an index run beside this search, or one that
        rebuilt an old index in the current format)."""
        if self._stamp_mtime() != self._seen:
            if self.format < FORMAT and not self.read_only:
                with self._lock:
                    self._open()
            self.reload()

    # -- reading ---------------------------------------------------------------------------
    def _text_query(self, tokens: list[str]):
        Q = tantivy.Query
        subs = []
        for tok in dict.fromkeys(tokens):
            subs.append((tantivy.Occur.Should, Q.boost_query(Q.term_query(self.schema, "title", tok), TITLE_BOOST)))
            subs.append((tantivy.Occur.Should, Q.term_query(self.schema, "body", tok)))
            if self.format >= 3 and CTX_BOOST:
                subs.append((tantivy.Occur.Should, Q.boost_query(Q.term_query(self.schema, "ctx", tok), CTX_BOOST)))
        return Q.boolean_query(subs)

    def _phrase_query(self, tokens: list[str]):
        Q = tantivy.Query
        if len(tokens) == 1:
            return self._text_query(tokens)
        return Q.boolean_query([(tantivy.Occur.Should, Q.boost_query(Q.phrase_query(self.schema, "title", tokens), TITLE_BOOST)),
                                (tantivy.Occur.Should, Q.phrase_query(self.schema, "body", tokens))])

    def _top(self, scored, tier: str, k: int, id_range: tuple[int, int] | None):
        """Top k of a scoring query within one tier (and id range); filters add no score."""
        Q = tantivy.Query
        clauses = [(tantivy.Occur.Must, scored),
                   (tantivy.Occur.Must, Q.const_score_query(Q.term_query(self.schema, "tier", tier), 0.0))]
        if id_range:
            rq = Q.range_query(self.schema, "id", tantivy.FieldType.Integer, int(id_range[0]), int(id_range[1]))
            clauses.append((tantivy.Occur.Must, Q.const_score_query(rq, 0.0)))
        return _hits(self.index, Q.boolean_query(clauses), k)

    def search(self, query: str, tiers: tuple[str, ...], k: int, id_range: tuple[int, int] | None = None):
        """[(node_id, bm25)] best first. With several tiers the lists are merged by score."""
        tokens = _tokens(query)
        if not tokens:
            return []
        q = self._text_query(tokens)
        hits = [h for t in tiers for h in self._top(q, t, k, id_range)]
        return sorted(hits, key=lambda h: -h[1])[:k] if len(tiers) > 1 else hits

    def search_docs(self, query: str, k: int) -> list[tuple[int, float]]:
        """[(root node id, bm25)] of the sources whose whole text best matches, best first."""
        tokens = _tokens(query)
        if not tokens:
            return []
        Q = tantivy.Query
        q = Q.boolean_query([(tantivy.Occur.Should, Q.term_query(self.docs_schema, "body", tok)) for tok in dict.fromkeys(tokens)])
        return _hits(self.docs, q, k)

    def doc_ids(self) -> set[int]:
        """The root node ids of the sources in the docs index."""
        return {i for i, _ in _hits(self.docs, tantivy.Query.all_query(), None)}

    def search_phrases(self, phrases: list[str], tiers: tuple[str, ...], k: int,
                       id_range: tuple[int, int] | None = None):
        """Nodes containing every phrase verbatim (word for word, in order), best BM25 first."""
        parts = [toks for toks in (analyze(p) for p in phrases) if toks]
        if not parts:
            return []
        q = tantivy.Query.boolean_query([(tantivy.Occur.Must, self._phrase_query(t)) for t in parts])
        hits = [h for t in tiers for h in self._top(q, t, k, id_range)]
        return sorted(hits, key=lambda h: -h[1])[:k] if len(tiers) > 1 else hits

    def ids(self) -> set[int]:
        """Every indexed id (for reconciling with the database)."""
        return set(self.id_list())

    def id_list(self) -> list[int]:
        """Every indexed document's id, sorted, repeats included (an id indexed twice is a bug
        a set would hide)."""
        return sorted(i for i, _ in _hits(self.index, tantivy.Query.all_query(), None))
