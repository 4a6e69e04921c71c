"""Opening text logs: gzip-compressed or plain, decided by the file's first bytes, not its name.

``metrics.jsonl.gz`` and ``metrics.csv.gz`` read like their plain versions; a file whose
name says ``.gz`` but holds plain text reads too, and a corrupt or truncated gzip stream is
an error naming the file (and, where the damage is, the line it had reached).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import BinaryIO

from dreamscope.errors import DreamscopeError

GZIP_MAGIC = b"\x1f\x8b"
#: What a broken gzip stream raises while being read (EOFError: cut short; BadGzipFile, zlib.error: corrupt).
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
_CONTROL = bytes(c for c in range(32) if c not in b"\t\n\r\f\v")


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_log(path: Path) -> BinaryIO:
    """The file's decompressed bytes as a binary stream (gzip or plain)."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def log_name(path: Path) -> str:
    """A log's name without a compression suffix: ``metrics.jsonl.gz`` -> ``metrics.jsonl``."""
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def read_head(path: Path, size: int = 65536) -> bytes:
    """The first ``size`` decompressed bytes (fewer if the file is shorter)."""
    try:
        with open_log(path) as f:
            return f.read(size)
    except GZIP_ERRORS as error:
        raise DreamscopeError(f"{path}:1: a broken gzip stream ({error}); expected a gzip-compressed text log "
                              f"or plain text") from None


def check_text(path: Path, head: bytes, expected: str) -> None:
    """Refuse binary files (a NUL, or control characters that text logs never hold) up front."""
    controls = len(head) - len(head.translate(None, _CONTROL))
    if b"\x00" in head or controls > 0.01 * len(head):
        first = next(i for i, c in enumerate(head) if c in _CONTROL)
        line = head[:first].count(b"\n") + 1
        raise DreamscopeError(f"{path}:{line}: binary data (byte {first} is {head[first]:#04x}), not text; "
                              f"expected {expected}")
