"""Opening text files, gzip or not, with decoding errors that name the line."""

import codecs
import gzip
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Tuple, Union

from spacy_bert_ner.errors import InputError


def open_bytes(path: Union[str, Path]) -> IO[bytes]:
    """Open a file for reading bytes: plain, ``.gz``, or a ``.zip`` holding one file."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, None, "file not found")
    if p.suffix == ".gz":
        return gzip.open(p, "rb")
    if p.suffix == ".zip":
        try:
            zf = zipfile.ZipFile(p)
        except zipfile.BadZipFile as e:
            raise InputError(p, None, f"not a readable zip file: {e}") from None
        members = [i for i in zf.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
        if len(members) != 1:
            raise InputError(p, None, f"expected a zip with one file, found {len(members)}: {[m.filename for m in members][:5]}")
        return zf.open(members[0])
    return open(p, "rb")


def _first_bad_line(path: Union[str, Path], encoding: str) -> Tuple[int, str]:
    """Find the first line that does not decode, for the error message."""
    with open_bytes(path) as f:
        for i, raw in enumerate(f, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as e:
                return i, f"byte {raw[e.start : e.start + 1]!r} at column {e.start + 1} is not valid {encoding}"
    return 0, "undecodable bytes"


def iter_lines(path: Union[str, Path], encoding: str) -> Iterator[Tuple[int, str]]:
    """Yield ``(line_number, text)`` with the line ending stripped.

    Only ``\\n`` and ``\\r\\n`` end a line: characters such as U+0085 or U+2028,
    which :meth:`str.splitlines` would treat as breaks, stay inside the line.
    """
    codecs.lookup(encoding)  # unknown encoding: LookupError before any output
    decoder = codecs.getincrementaldecoder(encoding)()
    with open_bytes(path) as f:
        try:
            for number, raw in enumerate(f, start=1):
                text = decoder.decode(raw)
                if text.endswith("\n"):
                    text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
                yield number, text
        except (UnicodeDecodeError, EOFError, OSError) as e:
            if isinstance(e, UnicodeDecodeError):
                line, msg = _first_bad_line(path, encoding)
                raise InputError(path, line or None, f"cannot decode: {msg} (use --encoding)") from None
            raise InputError(path, None, f"cannot read file: {e}") from None


def json_lines(path: Union[str, Path], encoding: str = "utf-8") -> Iterator[Tuple[int, Any]]:
    """Yield ``(line_number, value)`` of each non-blank JSON Lines line; invalid
    JSON is an :class:`InputError` naming the line and column."""
    import json

    for number, line in iter_lines(path, encoding):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(path, number, f"invalid JSON: {e.msg} (column {e.colno})") from None


def _default_mode() -> int:
    """The permissions ``open()`` would give a new file (0o666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Union[str, Path], data: Optional[bytes] = None, src: Optional[Path] = None) -> None:
    """Write ``data`` (or copy ``src``) to ``path`` via a temporary file and a rename.

    A crash never leaves a half-written file at ``path``; the file gets the
    usual permissions (``mkstemp`` alone would make it owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        if src is not None:
            os.close(fd)
            shutil.copyfile(src, tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data or b"")
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
