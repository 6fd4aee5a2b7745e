"""The data-dir lock: at most one writing process (`run`, `replay`) per data dir.

Two writers on one data dir race: both append to the tick log, both compact the same lake
partitions (one deletes the files the other is reading) and both upsert the same windows.
The writer holds `fcntl.flock` on `DATA_DIR/.lock` for its lifetime; a second writer is
refused at once with the holder's pid and command. The kernel drops the lock when its process
dies in any way (SIGKILL included), so a crash never leaves a stale lock behind; the pid in
the file is only there to say who holds it. Readers (`serve`, `check`) take no lock.

`hold` keeps the lock for the rest of the process and is reentrant within it: one process
running two commands in turn (tests invoking the CLI in process) is still one writer.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from tickwatch.errors import StoreError

LOCK_FILE = ".lock"


class DataDirLock:
    """An exclusive lock on `folder`, taken by `acquire` (or `with`), freed by `release`."""

    def __init__(self, folder: Path, command: str) -> None:
        self.folder = folder
        self.command = command
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    def acquire(self) -> DataDirLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot lock the data dir {self.folder}: {exc.strerror or exc}; give a "
                "writable --data-dir (DATA_DIR)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown pid"
            os.close(fd)
            raise StoreError(
                f"the data dir {self.folder} is in use by another tickwatch process ({holder}); "
                "stop that process first, or give this one another --data-dir (DATA_DIR)"
            ) from None
        try:  # who holds it, for the refusal message; a full disk only loses the note
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}: tickwatch {self.command}\n".encode())
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor frees the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        self.release()


_HELD: dict[Path, DataDirLock] = {}


def hold(folder: Path, command: str) -> DataDirLock:
    """The lock on `folder`, taken now or already held by this process; kept until exit."""
    key = folder.resolve()
    if key not in _HELD:
        _HELD[key] = DataDirLock(folder, command).acquire()
    return _HELD[key]
