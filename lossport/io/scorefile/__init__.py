"""Score files (``lossport score -o FILE``): :mod:`.format` (layout, header), :mod:`.writer`
(batch by batch) and :mod:`.reader` (an existing file, untrusted, to continue it)."""

from lossport.io.scorefile.format import COLUMNS, Header, Row, ScoreFileError, kind_of
from lossport.io.scorefile.reader import Existing, read_existing
from lossport.io.scorefile.writer import ScoreWriter, open_writer

__all__ = [
    "COLUMNS",
    "Existing",
    "Header",
    "Row",
    "ScoreFileError",
    "ScoreWriter",
    "kind_of",
    "open_writer",
    "read_existing",
]
