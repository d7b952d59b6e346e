"""The page-work pipe's framing: length-prefixed pickles (crawler.workers writes batches, monitor.pageserve answers,
in a page-work process or in the pass). A module of its own so that the crawl process can speak it without
importing what the page work imports (storage and SQLAlchemy)."""
from __future__ import annotations

import struct
from typing import IO, BinaryIO

HEADER = struct.Struct("!Q")  # the byte length of the pickle that follows


def write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next message, or None when the other side closed the pipe (also mid-message: it died)."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def close_quietly(*streams: IO) -> None:
    """Close each end of a page-work pipe; one the other side already broke (its unflushed bytes have nobody to
    read them) is closed all the same."""
    for stream in streams:
        try:
            stream.close()
        except OSError:
            pass
