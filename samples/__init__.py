"""Generated material with known answers: test fixtures, benchmark corpora and the README's demo.

- :mod:`.documents`: PDFs (a report with an outline, tables and a figure; two columns; a scanned
  memo; long, encrypted and bomb PDFs) and the demo corpus, with the facts they hold;
- :mod:`.video`: clips with on-screen text, slides, speech (espeak-ng) and subtitles;
- :mod:`.demo`: the demo itself (``sleuth demo``): index the corpus, search it, ask it.

Not product code: nothing under readers/, index/, agent/ or library imports it. The document
generators are re-exported here (``from sleuth.samples import make_report_pdf``): the names in
``documents.__all__``.
"""

from .documents import *  # noqa: F401,F403
