"""Receiving one uploaded video: streamed into a server-named temporary file, size-capped as it streams.

The request body is parsed with python-multipart's streaming parser, so the
file never sits whole in memory and the size cap stops the upload as soon as
it is passed, before the disk fills. The client's file name is never used as
a path: it picks the file's suffix from `video.VIDEO_EXTENSIONS`, and
`receive_upload` hands it back as text for a caller that keeps the file under
a name of its own making (the studio; ``serve`` deletes every upload, so it
keeps no names).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import ClientDisconnect

from ..video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

try:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # python-multipart < 0.0.13 ships the module as `multipart`
    from multipart.exceptions import FormParserError
    from multipart.multipart import MultipartParser, parse_options_header

FORM_OVERHEAD = 64 * 1024
"""Bytes of multipart framing allowed on top of the size cap when the body's length is declared."""

UPLOAD_PREFIX = "snapaction-upload-"


class UploadError(Exception):
    """An upload that cannot be used: an HTTP status and one sentence for the person who sent it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def too_large(max_bytes: int) -> UploadError:
    """The 413 answer for an upload over `max_bytes`."""
    return UploadError(
        413,
        f"The video is larger than this server's upload limit of {format_mb(max_bytes)}; "
        "send a shorter clip, or start the server with a larger --max-upload-mb.",
    )


def clip_message(err, path: Path) -> str:
    """The reason an uploaded clip is unusable (a `ClipError` on `path`), in words meant for the uploader: no server paths."""
    reason = err.reason.replace(str(path), "the upload").replace(str(path.parent), "the server")
    return f"This file cannot be used as a video: {reason}."


def format_mb(num_bytes: float) -> str:
    """'200 MB' for 200 * 2**20 bytes (at most one decimal)."""
    mb = num_bytes / 2**20
    return f"{mb:.0f} MB" if mb >= 10 or mb == int(mb) else f"{mb:.1f} MB"


def remove(path: str | Path | None) -> None:
    """Delete a temporary file; a file already gone is fine."""
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def safe_suffix(filename: bytes | str | None) -> str:
    """A known video suffix matching the client's file name, else '.upload'; never the client's text."""
    if isinstance(filename, bytes):
        filename = filename.decode("utf-8", "replace")
    ext = os.path.splitext(filename or "")[1].lower()
    return next((known for known in VIDEO_EXTENSIONS if known == ext), ".upload")


class _VideoPart:
    """python-multipart callbacks that keep the bytes of the form's video: its first file part, or field 'video'."""

    def __init__(self):
        self.found = False
        self.filename: bytes | None = None
        self.pending: list[bytes] = []
        self._inside = False
        self._name = b""
        self._value = b""
        self._disposition = b""

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._name.strip().lower() == b"content-disposition":
            self._disposition = self._value
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        is_file = b"filename" in options or options.get(b"name") == b"video"
        self._inside = is_file and not self.found
        if self._inside:
            self.found = True
            self.filename = options.get(b"filename")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._inside:
            self.pending.append(data[start:end])

    def _part_end(self) -> None:
        self._inside = False


@dataclass
class Upload:
    """A received video: the server-named file, and the file name the client gave (text, never a path here)."""

    path: Path
    filename: str | None


async def receive_video(request, folder: str | Path, max_bytes: int) -> Path:
    """`receive_upload`'s file alone, for callers that keep no name (``serve``: every upload is deleted once classified)."""
    return (await receive_upload(request, folder, max_bytes)).path


async def receive_upload(request, folder: str | Path, max_bytes: int) -> Upload:
    """Stream the video of a multipart/form-data `request` into a new file in `folder`; return it and its client's name.

    The video is the form's first part that is a file or is named ``video``
    (the page and the API docs send it as file field ``video``). Raises `UploadError` (415 not multipart,
    400 malformed or no file or empty file, 413 over `max_bytes`); the partial
    file is removed whenever this raises.
    """
    kind, params = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data":
        raise UploadError(
            415,
            "Send the video as multipart/form-data with the file in the field 'video' "
            "(as the page, an HTML form or `curl -F video=@clip.mp4` do).",
        )
    if not params.get(b"boundary"):
        raise UploadError(400, "The upload is not a well-formed multipart form (its boundary is missing).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise too_large(max_bytes)

    part = _VideoPart()
    parser = MultipartParser(params[b"boundary"], part.callbacks())
    file = None
    size = 0
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if part.pending and file is None:
                file = tempfile.NamedTemporaryFile(
                    dir=folder, prefix=UPLOAD_PREFIX, suffix=safe_suffix(part.filename), delete=False
                )
            for piece in part.pending:
                size += len(piece)
                if size > max_bytes:
                    # uvicorn reads and drops the rest of the body after the
                    # answer, so a client still sending gets the 413, not a reset.
                    raise too_large(max_bytes)
                file.write(piece)
            part.pending.clear()
        parser.finalize()
        if not part.found:
            raise UploadError(400, "The form holds no file; send the video in the field 'video'.")
        if size == 0:
            raise UploadError(400, "The uploaded file is empty (0 bytes); choose a video file.")
        file.close()
        name = part.filename.decode("utf-8", "replace") if isinstance(part.filename, bytes) else part.filename
        return Upload(Path(file.name), name)
    except FormParserError:
        _discard(file)
        raise UploadError(400, "The upload is not a well-formed multipart form; send the video again.") from None
    except ClientDisconnect:  # the client went away mid-upload: nothing is wrong with the server
        _discard(file)
        log.info("an upload was abandoned by the client after %d bytes", size)
        raise UploadError(400, "The upload stopped before the whole file arrived; send it again.") from None
    except BaseException:
        _discard(file)
        raise


def _discard(file) -> None:
    if file is not None:
        file.close()
        remove(file.name)
