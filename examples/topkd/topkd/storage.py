"""Files of a run: atomic writes, loads that say what went wrong and what to do, and the run lock.

- Writes go to a temporary file with a name of its own (process id and a random part), then
  ``os.replace``: a crash never leaves a torn file, and two writers never share a temporary.
- Loads (``torch.load(weights_only=True)``, JSON) turn any failure, and a tensor of the wrong
  shape, into a :class:`RunFileError` that names the file, the stage that makes it and what to
  do (by default: delete the file and rerun that stage).
- :class:`RunLock` is an exclusive lock per run folder: a second run on the same folder stops
  with the holder's process id instead of interleaving its writes with the first one's.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import uuid
from typing import Any, Optional, Sequence

import torch

__all__ = ["RunFileError", "RunLockedError", "RunLock", "describe", "temp_path", "atomic_save", "write_text", "write_json",
           "read_json", "load_file", "check_shape"]


class RunFileError(RuntimeError):
    """A run file that cannot be used: unreadable, truncated, of the wrong shape or kind."""


class RunLockedError(RuntimeError):
    """The run folder is locked by another process."""


def temp_path(path: str) -> str:
    """A temporary name next to ``path``, unique to this process and call (ends in ``.tmp``)."""
    return f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def _replace(tmp: str, path: str) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a unique temporary file, then ``os.replace`` onto ``path``."""
    tmp = temp_path(path)
    try:
        torch.save(obj, tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _replace(tmp, path)


def write_text(text: str, path: str) -> None:
    """``text`` at ``path``, written atomically (see :func:`atomic_save`)."""
    tmp = temp_path(path)
    try:
        with open(tmp, "w") as f:
            f.write(text)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _replace(tmp, path)


def write_json(obj, path: str) -> None:
    """``obj`` as indented JSON at ``path``, written atomically."""
    write_text(json.dumps(obj, indent=2), path)


def describe(err: BaseException) -> str:
    """``"Type: first line of the message"``: an exception in one line."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _remedy(path: str, stage: str, remedy: Optional[str]) -> str:
    return remedy or f"delete {path!r} and rerun the {stage!r} stage"


def read_json(path: str, stage: str, remedy: Optional[str] = None) -> Any:
    """The JSON value in ``path``, written by the stage ``stage``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    RunFileError
        When it is not valid JSON (e.g. truncated), naming the file, the stage and the remedy.
    """
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RunFileError(f"{path!r} (written by the {stage!r} stage) is not valid JSON "
                           f"({describe(err)}): {_remedy(path, stage, remedy)}") from err


def load_file(path: str, stage: str, remedy: Optional[str] = None, mmap: bool = False) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that say which
    file, which stage made it and what to do.

    Parameters
    ----------
    path : str
    stage : str
        The stage that writes the file (named in errors).
    remedy : str, optional
        What to do about a bad file; default: delete it and rerun ``stage``.
    mmap : bool
        Map the tensors instead of reading them (cheap checks of shapes).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    RunFileError
        When the file cannot be read (empty, truncated, not a torch file, not loadable with
        ``weights_only``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} not found (made by the {stage!r} stage)")
    if os.path.getsize(path) == 0:
        raise RunFileError(f"{path!r} (written by the {stage!r} stage) is empty: "
                           f"{_remedy(path, stage, remedy)}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # noqa: BLE001 -- every failure of an untrusted file is reported alike
        raise RunFileError(f"{path!r} (written by the {stage!r} stage) cannot be loaded "
                           f"({describe(err)}): {_remedy(path, stage, remedy)}") from err


def check_shape(tensor, shape: Sequence[Optional[int]], path: str, stage: str,
                what: str = "tensor", dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``tensor`` itself when it is a tensor of ``shape`` (``None`` entries match any size)
    and ``dtype``.

    Raises
    ------
    RunFileError
        Naming the file, the stage, the expected and the actual shape.
    """
    ok = torch.is_tensor(tensor) and tensor.dim() == len(shape) and all(
        want is None or want == got for want, got in zip(shape, tensor.shape))
    if ok and dtype is not None:
        ok = tensor.dtype == dtype
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        got = (f"{tuple(tensor.shape)} {tensor.dtype}" if torch.is_tensor(tensor)
               else type(tensor).__name__)
        raise RunFileError(f"{path!r}: the {what} should be {want}"
                           f"{'' if dtype is None else ' ' + str(dtype)}, got {got} (written by "
                           f"another run or configuration?): {_remedy(path, stage, None)}")
    return tensor


class RunLock:
    """Exclusive lock of a run folder (``<folder>/.lock``, ``fcntl.flock``), held from
    :meth:`acquire` until :meth:`release` or the end of the process.

    The lock file holds the holder's process id and host, which the error of a second run
    names. A crashed holder releases the lock with its process (the kernel drops ``flock``
    locks); a stale file does not block anyone. On network file systems without ``flock``
    support the lock is only as good as the file system's.

    Parameters
    ----------
    folder : str
        The run folder (created when missing).
    """

    def __init__(self, folder: str):
        self.folder = folder
        self.path = os.path.join(folder, ".lock")
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        """Take the lock.

        Raises
        ------
        RunLockedError
            When another process holds it (its pid and host in the message).
        """
        import fcntl

        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            with open(self.path) as f:
                holder = f.read().strip() or "an unknown process"
            raise RunLockedError(f"run folder {self.folder!r} is in use by {holder}: wait for "
                                 "it to finish, or give this run another output folder "
                                 "(--out)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; it only matters while locked)."""
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
