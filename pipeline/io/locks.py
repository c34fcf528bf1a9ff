"""One writer per output: a second process that would write the same file or state directory fails fast."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def single_writer(target: str | Path) -> Iterator[None]:
    """Hold an exclusive lock for writing ``target`` while the block runs; raise at once if another process holds it.

    The lock is ``flock`` on ``.<name>.lock`` beside ``target`` (released by the kernel when its holder dies, so a
    killed job never leaves a stale lock); the file names the holder.
    """
    target = Path(target)
    lock = target.parent / f".{target.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RuntimeError(f"{target} is being written by {holder} (lock {lock}); wait for it to finish or stop "
                               "it: two writers of one output would race") from None
        except OSError as err:  # a file system without flock (some Lustre mounts): write unguarded, say so
            print(f"warning: cannot lock {lock} ({err.strerror}); not guarding {target} against a second writer",
                  file=sys.stderr)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
