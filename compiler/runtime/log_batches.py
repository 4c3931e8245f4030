"""Step logs put into the store in batches, a few times a second.

A step's log put on its own would cost a couple of filesystem flushes, more than a short
step itself. Batched, the logs of all the steps that ended in the last `FLUSH_SECONDS` share
one commit (`Store.put_bytes_many`). The digest is known at once, so lineage records it at
once; what a crash can lose is the logs of the steps that ended in the last fraction of a
second (`mlc logs` then says the log is missing). Logs of 1 MiB or more are put on their own,
straight away. `close` stores what is left.
"""

from __future__ import annotations

import threading

from mlc.store.base import Store
from mlc.store.digest import digest_bytes
from mlc.store.errors import StoreError

FLUSH_SECONDS = 0.25
LARGE_LOG_BYTES = 1 << 20


class LogBatches:
    """Pending logs of one run, flushed to the store by a background thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        """Held while a batch is stored: `flush` returns once every earlier log is in."""
        self._pending: list[bytes] = []
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._problems: list[str] = []

    def put(self, data: bytes) -> str:
        """The log's digest; the log itself is stored with the next batch."""
        if len(data) >= LARGE_LOG_BYTES or self._closed.is_set():
            return str(self._store.put_bytes(data))
        digest = digest_bytes(data)
        with self._lock:
            self._pending.append(data)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name="mlc-logs", daemon=True)
                self._thread.start()
        return str(digest)

    def _run(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            self._flush()

    def flush(self) -> None:
        """Stores the pending logs now (another process is about to read one of them)."""
        self._flush()

    def _flush(self) -> None:
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._store.put_bytes_many(batch)
            except (OSError, StoreError) as exc:
                with self._lock:
                    self._problems.append(str(exc))

    def close(self) -> list[str]:
        """Stores every pending log and stops; returns what went wrong, if anything."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join()
        self._flush()
        with self._lock:
            return list(self._problems)
