"""The one way bpgraph writes output (atomically for regular files, in place for devices and FIFOs,
through symlinks, ``-`` as stdout), and reads ``.npz`` input safely."""

from __future__ import annotations

import math
import os
import stat
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import BpgraphError


class OutputError(BpgraphError, OSError):
    """An output file that cannot be written; the message names it and says what to do."""


class InputError(BpgraphError, ValueError):
    """An input file that cannot be read safely; the message names it (and the array)."""


class OutputIsFolderError(OutputError, IsADirectoryError):
    """The output path is a folder."""


class OutputFolderMissingError(OutputError, FileNotFoundError):
    """The folder the output should go in does not exist."""


class OutputParentNotFolderError(OutputError, NotADirectoryError):
    """The output's parent is a file, not a folder."""


class OutputReadOnlyError(OutputError, PermissionError):
    """The output exists and is read-only; ``overwrite=True`` replaces it anyway."""


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, overwrite: bool = False) -> Path:
    """Write ``data`` (str as UTF-8) to ``path``, a regular file by renaming a fsynced temporary file
    over it, and return ``Path(path)``; a read-only file is refused unless ``overwrite``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    given = target = Path(path)
    if os.fspath(path) == "-":
        _write_stdout(payload)
        return given
    if given.is_symlink():  # follow the chain to the file it ends at (for a dangling link, the path it names)
        try:
            target = given.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise OutputError(f"cannot write {given}: its symlinks cannot be followed ({exc})") from exc
    name = str(given) if target == given else f"{given} (-> {target})"
    try:
        mode: int | None = os.stat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is None:  # a new file gets the usual 0o666 minus the umask
        umask = os.umask(0)
        os.umask(umask)
        _replace(target, payload, name, 0o666 & ~umask)
    elif stat.S_ISDIR(mode):
        raise OutputIsFolderError(f"{name} is a folder; give a file name")
    elif not stat.S_ISREG(mode):  # a device or FIFO (which waits for a reader): written in place
        try:
            with open(os.open(target, os.O_WRONLY | os.O_NOCTTY), "wb") as handle:
                handle.write(payload)
        except OSError as exc:
            raise OutputError(f"cannot write {name}: {exc.strerror or exc}") from exc
    elif not overwrite and ((mode & 0o222) == 0 or not os.access(target, os.W_OK)):
        raise OutputReadOnlyError(f"{name} is read-only; make it writable or pass overwrite=True to "
                                  "replace it")
    else:
        _replace(target, payload, name, mode & 0o7777)
    return given


def _replace(target: Path, payload: bytes, name: str, mode: int) -> None:
    """Write a temporary file next to ``target``, fsync it, and rename it over ``target``."""
    folder = target.parent
    if folder.exists() and not folder.is_dir():
        raise OutputParentNotFolderError(f"cannot write {name}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise OutputFolderMissingError(f"cannot write {name}: the folder {folder} does not exist; "
                                       "create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {name}: cannot create a file in {folder} ({exc.strerror})") from exc
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_stdout(payload: bytes) -> None:
    """Bytes to ``sys.stdout.buffer``; a text-only stdout gets the UTF-8 text."""
    out = sys.stdout
    out.flush()  # text already printed comes first
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        buffer.write(payload)
        buffer.flush()
        return
    try:
        out.write(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise OutputError("standard output here takes only text; write binary output to a file") from exc
    out.flush()


def read_npz(path: str | os.PathLike[str], *, max_elements: int = 10_000_000,
             max_bytes: int = 256 * 2**20) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file by name, read without trusting it: no pickles, each header checked
    before its data, at most ``max_elements`` and ``max_bytes`` (stored or inflated) in all."""
    arrays: dict[str, np.ndarray] = {}
    where, elements = os.fspath(path), 0
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            size = max(sum(m.compress_size for m in members), sum(m.file_size for m in members))
            if size > max_bytes:
                raise InputError(f"{where}: its arrays take {size:,} bytes, more than max_bytes "
                                 f"({max_bytes:,})")
            for member in members:
                key = member.filename.removesuffix(".npy")
                where = f"{os.fspath(path)}, array {key!r}"
                with archive.open(member) as data:  # shape and dtype from the header, before any data
                    version = np.lib.format.read_magic(data)
                    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = header(data)
                elements += math.prod(shape)
                if dtype.hasobject:
                    raise InputError(f"{where}: holds Python objects (a pickle); save numbers only")
                if elements > max_elements:
                    raise InputError(f"{where}: {elements:,} elements in all, more than max_elements "
                                     f"({max_elements:,})")
                if math.prod(shape) * dtype.itemsize > member.file_size:
                    raise InputError(f"{where}: truncated: {shape} {dtype} in {member.file_size:,} bytes")
                with archive.open(member) as data:
                    arrays[key] = np.lib.format.read_array(data, allow_pickle=False)
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
            zlib.error) as exc:
        raise InputError(f"cannot read {where}: {exc or type(exc).__name__} (save arrays with numpy.savez)") \
            from None
    return arrays
