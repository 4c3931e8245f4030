"""The few Kubernetes API calls the backend makes, as plain JSON, with a client-side rate limit.

Built on the official client's connection handling (kubeconfig, in-cluster service account,
TLS, tokens) but not on its models: objects stay dicts, as the manifests are, and watches are
read line by line. Writes go through a token bucket (`qps`, a target setting); a write that
cannot reach the API server (it restarts) is retried for a while, and a create that meets
`409 AlreadyExists` adopts the existing object when it is the same attempt's (spec hash).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mlc.backends.kubernetes import names
from mlc.backends.kubernetes.settings import KubeSettings

UNREACHABLE_RETRY_SECONDS = 60.0
"""How long a write keeps trying while the API server cannot be reached."""
WATCH_SECONDS = 240
"""How long one watch request lasts before it is renewed (from the last resource version)."""


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0: the server was not reached)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Gone(KubeError):
    """A watch's resource version is too old (`410 Gone`): list again."""


class Conflict(KubeError):
    """An object of that name exists and is not the one mlc meant to create."""


class RateLimit:
    """A token bucket: at most `qps` calls per second, in bursts of up to `qps`."""

    def __init__(self, qps: float) -> None:
        self.rate = max(qps, 0.1)
        self.tokens = self.rate
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)


class KubeApi:
    """JSON calls against one namespace (see the module docstring)."""

    def __init__(self, settings: KubeSettings) -> None:
        self.settings = settings
        self.namespace = settings.namespace
        self.client = _client(settings)
        self.limit = RateLimit(settings.qps)
        self.writes = 0
        self.reads = 0
        self._warnings: list[str] = []

    @property
    def server(self) -> str:
        return str(self.client.configuration.host)

    # ------------------------------------------------------------------ plain calls

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | tuple[float, float | None] | None = 30.0,
        stream: bool = False,
    ) -> Any:
        """One call; the decoded JSON (or the raw response for `stream`). Raises `KubeError`."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "*/*" if stream else "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        try:
            method_, url, header_params, body_, _ = self.client.param_serialize(
                method,
                path,
                query_params=params,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.client.call_api(
                method_, url, header_params=header_params, body=body_, _request_timeout=timeout
            )
        except ApiException as exc:
            raise _api_error(exc.status or 0, exc.reason or "", exc.body) from None
        except Exception as exc:  # urllib3: the server was not reached
            raise KubeError(
                f"the Kubernetes API at {self.server} cannot be reached: {exc}"
            ) from None
        if stream:
            if response.status >= 400:
                raise _api_error(response.status, response.reason, response.read())
            return response.response
        warning = response.getheader("Warning")
        if warning:
            self._warnings += [_warning_text(w) for w in str(warning).split(", 299 ")]
        data = response.read()
        if response.status >= 400:
            raise _api_error(response.status, response.reason, data)
        return json.loads(data) if data else {}

    def take_warnings(self) -> list[str]:
        """The API server's warnings (`Warning` headers) since the last call."""
        warnings, self._warnings = self._warnings, []
        return warnings

    def write(self, method: str, path: str, **options: Any) -> Any:
        """A rate-limited write, retried while the API server cannot be reached."""
        deadline = time.monotonic() + UNREACHABLE_RETRY_SECONDS
        delay = 0.2
        while True:
            self.limit.acquire()
            self.writes += 1
            try:
                return self.request(method, path, **options)
            except KubeError as exc:
                if exc.status != 0 or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def read(self, path: str, **options: Any) -> Any:
        self.reads += 1
        return self.request("GET", path, **options)

    # ------------------------------------------------------------------ objects

    def jobs_path(self, name: str = "") -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs" + (f"/{name}" if name else "")

    def pods_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/pods"

    def config_maps_path(self, name: str = "") -> str:
        base = f"/api/v1/namespaces/{self.namespace}/configmaps"
        return base + (f"/{name}" if name else "")

    def events_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/events"

    def create(self, path: str, manifest: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Creates an object, or finds the same one already there: `(object, created)`.
        Raises `Conflict` when a different object has the name (spec hashes differ)."""
        try:
            return self.write("POST", path, body=manifest), True
        except KubeError as exc:
            if exc.reason != "AlreadyExists":
                raise
        name = manifest["metadata"]["name"]
        existing: dict[str, Any] = self.read(f"{path}/{name}")
        wanted = manifest["metadata"].get("annotations", {}).get(names.SPEC_HASH)
        found = (existing.get("metadata", {}).get("annotations") or {}).get(names.SPEC_HASH)
        if wanted != found:
            raise Conflict(
                f"`{name}` already exists in namespace `{self.namespace}` and is not this "
                "attempt's (its spec differs)",
                409,
                "AlreadyExists",
            )
        return existing, False

    def delete(self, path: str, *, grace_seconds: float | None = None, query: Any = None) -> None:
        """Deletes an object (or a collection); gone already is fine."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = int(grace_seconds)
        try:
            self.write("DELETE", path, body=body, query=query)
        except KubeError as exc:
            if exc.status != 404:
                raise

    def list(self, path: str, selector: str | None = None, **query: Any) -> dict[str, Any]:
        listed: dict[str, Any] = self.read(path, query={"labelSelector": selector, **query})
        return listed

    def watch(
        self,
        path: str,
        resource_version: str,
        *,
        selector: str | None = None,
        opened: Callable[[Any], None] | None = None,
        **query: Any,
    ) -> Iterator[dict[str, Any]]:
        """The events of one watch request, from `resource_version` (raises `Gone`);
        `opened` receives the response (whose `shutdown()` ends the watch at once)."""
        response = self.request(
            "GET",
            path,
            query={
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": WATCH_SECONDS,
                "labelSelector": selector,
                **query,
            },
            timeout=(10.0, WATCH_SECONDS + 30.0),
            stream=True,
        )
        if opened is not None:
            opened(response)
        buffer = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event: dict[str, Any] = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        if status.get("code") == 410:
                            raise Gone(status.get("message", "gone"), 410, "Expired")
                        raise KubeError(status.get("message", "watch error"), status.get("code", 0))
                    yield event
        finally:
            response.release_conn()

    def close(self) -> None:
        self.client.close()


def _client(settings: KubeSettings) -> Any:
    """An `ApiClient` from the target's kubeconfig/context, KUBECONFIG or ~/.kube/config, or
    the pod's service account when mlc itself runs in the cluster."""
    import os

    from kubernetes import client, config

    explicit = settings.kubeconfig or os.environ.get("KUBECONFIG")
    default = os.path.expanduser("~/.kube/config")
    if explicit or os.path.exists(default):
        try:
            return config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=explicit or default, context=settings.context
            )
        except Exception as exc:
            raise KubeError(f"the kubeconfig cannot be used: {exc}") from None
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except Exception:
        raise KubeError(
            "no Kubernetes cluster configured: set KUBECONFIG, the target's `kubeconfig`, or "
            "run in a pod with a service account"
        ) from None
    return client.ApiClient()


def _warning_text(header: str) -> str:
    """`299 - "would violate PodSecurity …"` → `would violate PodSecurity …`."""
    text = header.strip()
    if text.startswith("299 "):
        text = text[4:]
    text = text.removeprefix("- ").strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"')
    return text


def _api_error(status: int, reason: str, body: Any) -> KubeError:
    """A `KubeError` with the API server's own message."""
    message, why = reason, reason
    try:
        data = json.loads(body) if body else {}
        message = data.get("message") or message
        why = data.get("reason") or why
    except (TypeError, ValueError):
        pass
    error_class = Gone if status == 410 else KubeError
    return error_class(f"{message} ({status})", status, why)
