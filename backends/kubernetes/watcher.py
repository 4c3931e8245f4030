"""A watch that lasts: list, then watch from the list's resource version, forever.

Each `Watcher` follows one kind of object in the namespace (the run's pods and Jobs by label,
Warning events by field) on a thread of its own and hands every object it sees to a callback,
the initial list's included. It re-lists on `410 Gone`, renews the watch when the server ends
it, and waits out an API server that cannot be reached (it restarts) with a growing delay.
Nothing polls: the thread blocks on the watch's stream.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from mlc.backends.kubernetes.api import Gone, KubeApi, KubeError

Handler = Callable[[str, dict[str, Any]], None]
"""Called with the event type (`ADDED`, `MODIFIED`, `DELETED`, `LISTED`) and the object."""


class Watcher:
    """Follows one kind of object (see the module docstring)."""

    def __init__(
        self,
        api: KubeApi,
        path: str,
        handle: Handler,
        *,
        selector: str | None = None,
        field_selector: str | None = None,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.api = api
        self.path = path
        self.handle = handle
        self.selector = selector
        self.field_selector = field_selector
        self.on_problem = on_problem or (lambda _: None)
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"mlc-watch{path}", daemon=True)
        self.response: Any = None

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Ends the watch now (its blocked read is shut down)."""
        self.stopping.set()
        response = self.response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def _run(self) -> None:
        version: str | None = None
        delay = 0.2
        while not self.stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                    self.synced.set()
                for event in self.api.watch(
                    self.path,
                    version,
                    selector=self.selector,
                    opened=self._opened,
                    fieldSelector=self.field_selector,
                ):
                    if self.stopping.is_set():
                        return
                    kind, obj = event.get("type", ""), event.get("object") or {}
                    version = obj.get("metadata", {}).get("resourceVersion") or version
                    if kind != "BOOKMARK":
                        self._handle(kind, obj)
                delay = 0.2
            except Gone:
                version = None
            except KubeError as exc:
                if self.stopping.is_set():
                    return
                if exc.status not in (0, 429, 500, 503, 504):
                    self.on_problem(str(exc))
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:  # a broken stream: renew the watch
                if self.stopping.is_set():
                    return
                self.on_problem(f"watching {self.path}: {exc}")
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    def _opened(self, response: Any) -> None:
        self.response = response
        if self.stopping.is_set():
            self.stop()

    def _list(self) -> str:
        listed = self.api.list(self.path, self.selector, fieldSelector=self.field_selector)
        for item in listed.get("items") or []:
            self._handle("LISTED", item)
        return str(listed.get("metadata", {}).get("resourceVersion", ""))

    def _handle(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            self.handle(kind, obj)
        except Exception as exc:  # a bug in a handler must not end the watch
            self.on_problem(f"handling {kind} {obj.get('metadata', {}).get('name')}: {exc!r}")
