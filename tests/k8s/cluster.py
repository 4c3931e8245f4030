"""A real Kubernetes control plane on 127.0.0.1 for mlc's integration tests.

Five plain processes, started and stopped by :class:`ControlPlane`: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (which plays the kubelet of fake nodes,
including GPU nodes, and drives pods to the outcome a test asks for; see ``stages.yaml``).
The binaries come from ``bash tests/k8s/build.sh``; nothing here needs Docker or a network.

From a shell::

    python -m tests.k8s.cluster up          # foreground; prints the kubeconfig; Ctrl-C stops

From Python (the pytest fixtures in ``tests/k8s/plugin.py`` do this)::

    with ControlPlane(workdir) as cluster:
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        ...

This module uses only the standard library (and ``openssl`` on PATH), so the command works
without the Kubernetes Python client installed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
STAGES_FILE = HERE / "stages.yaml"
BUILD_COMMAND = "bash tests/k8s/build.sh"

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

#: Node label that carries the GPU model, as NVIDIA's GPU feature discovery sets it.
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
#: Extended resource through which pods request GPUs.
GPU_RESOURCE = "nvidia.com/gpu"

#: Pod annotations read by the kwok stages (see ``stages.yaml``).
OUTCOME_ANNOTATION = "mlc.test/outcome"
EXIT_CODE_ANNOTATION = "mlc.test/exit-code"
RUN_FOR_ANNOTATION = "mlc.test/run-for"
TERMINATION_MESSAGE_ANNOTATION = "mlc.test/termination-message"
#: Node annotation that makes kwok play a node's kubelet (every ``NodeSpec`` carries it).
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"

START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or did not become ready."""


class PrerequisiteMissing(ControlPlaneError):
    """Something the control plane needs (binaries, openssl) is not on this machine."""


# --------------------------------------------------------------------------------------------
# Where the binaries are


@dataclasses.dataclass(frozen=True)
class Versions:
    """The pinned Kubernetes and kwok versions, as ``build.sh`` declares them."""

    kubernetes: str
    kwok: str


def pinned_versions(build_script: Path = BUILD_SCRIPT) -> Versions:
    """Read the versions from ``build.sh``, the one place they are written down."""
    text = build_script.read_text()
    found: dict[str, str] = {}
    for name in ("K8S_VERSION", "KWOK_VERSION"):
        match = re.search(rf"^{name}=(\S+)$", text, re.MULTILINE)
        if match is None:
            raise ControlPlaneError(f"{build_script} does not set {name}")
        found[name] = match.group(1)
    return Versions(kubernetes=found["K8S_VERSION"], kwok=found["KWOK_VERSION"])


def default_prefix() -> Path:
    """The install prefix that ``build.sh`` uses for the pinned versions."""
    explicit = os.environ.get("MLC_K8S_PREFIX")
    if explicit:
        return Path(explicit)
    versions = pinned_versions()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "mlc-k8s" / f"{versions.kubernetes}-kwok{versions.kwok}"


def missing_prerequisites(prefix: Path | None = None) -> list[str]:
    """Say, one line each, what is missing to start a control plane (empty if nothing)."""
    prefix = default_prefix() if prefix is None else prefix
    problems: list[str] = []
    absent = [name for name in COMPONENTS if not os.access(prefix / "bin" / name, os.X_OK)]
    if absent:
        problems.append(
            f"the Kubernetes test binaries ({', '.join(absent)}) are not in {prefix}/bin: "
            f"build them with `{BUILD_COMMAND}` (15-25 minutes the first time)"
        )
    if shutil.which("openssl") is None:
        problems.append(
            "`openssl` is not on PATH; it makes the cluster's certificates "
            "(Debian/Ubuntu: `apt-get install openssl`)"
        )
    return problems


# --------------------------------------------------------------------------------------------
# Fake nodes


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """A fake node: its capacity, GPUs and labels. kwok keeps it Ready."""

    name: str
    cpu: str = "16"
    memory: str = "64Gi"
    pods: int = 110
    ephemeral_storage: str = "500Gi"
    gpus: int = 0
    gpu_product: str | None = None
    gpu_memory_mib: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    taints: tuple[tuple[str, str, str], ...] = ()  # (key, value, effect)

    def manifest(self) -> dict[str, Any]:
        """The Node object to create (status included: the apiserver keeps it on create)."""
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
        }
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": str(self.pods),
            "ephemeral-storage": self.ephemeral_storage,
        }
        if self.gpus:
            resources[GPU_RESOURCE] = str(self.gpus)
            labels["nvidia.com/gpu.present"] = "true"
            labels["nvidia.com/gpu.count"] = str(self.gpus)
            if self.gpu_product:
                labels[GPU_PRODUCT_LABEL] = self.gpu_product
            if self.gpu_memory_mib:
                labels["nvidia.com/gpu.memory"] = str(self.gpu_memory_mib)
        labels.update(dict(self.labels))
        spec: dict[str, Any] = {}
        if self.taints:
            spec["taints"] = [
                {"key": key, "value": value, "effect": effect} for key, value, effect in self.taints
            ]
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {FAKE_NODE_ANNOTATION: "fake"},
            },
            "spec": spec,
            "status": {"capacity": resources, "allocatable": dict(resources)},
        }


A100_NODE = NodeSpec(
    name="gpu-a100-0",
    cpu="96",
    memory="1152Gi",
    gpus=8,
    gpu_product="NVIDIA-A100-SXM4-80GB",
    gpu_memory_mib=81920,
    labels=(("node.kubernetes.io/instance-type", "a100-8x"),),
)
T4_NODE = NodeSpec(
    name="gpu-t4-0",
    cpu="48",
    memory="192Gi",
    gpus=4,
    gpu_product="Tesla-T4",
    gpu_memory_mib=15360,
    labels=(("node.kubernetes.io/instance-type", "t4-4x"),),
)
CPU_NODE = NodeSpec(
    name="cpu-0",
    cpu="16",
    memory="64Gi",
    labels=(("node.kubernetes.io/instance-type", "cpu-16"),),
)
#: The inventory every test cluster starts with.
DEFAULT_NODES: tuple[NodeSpec, ...] = (A100_NODE, T4_NODE, CPU_NODE)


# --------------------------------------------------------------------------------------------
# Small helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _non_loopback_ipv4() -> str | None:
    """An IPv4 address of a local non-loopback interface, found without sending anything."""
    if not sys.platform.startswith("linux"):
        return None
    import fcntl
    import struct

    siocgifaddr = 0x8915
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                packed = fcntl.ioctl(
                    sock.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not address.startswith("127."):
            return address
    return None


def _parent_death_wrapper() -> list[str]:
    """A command prefix that makes a child get SIGKILL when its parent dies (Linux only).

    It keeps an apiserver from outliving a test run that was killed with SIGKILL. SIGKILL, not
    SIGTERM: all components get it at once, and an apiserver asked to shut down gracefully
    while its etcd vanishes waits for etcd forever; the state is disposable. util-linux's
    ``setpriv`` sets the signal and then execs the component, so no Python code runs between
    fork and exec (a ``preexec_fn`` could deadlock in a process that has threads).
    """
    setpriv = shutil.which("setpriv")
    if not sys.platform.startswith("linux") or setpriv is None:
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


def _run_openssl(args: Sequence[str], cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(
            f"openssl {' '.join(args)} failed ({result.returncode}):\n{result.stderr.strip()}"
        )


def log_tails(logs: Path, names: Iterable[str], lines: int = 25) -> str:
    """The last lines of the log of each named component under `logs`, for failure reports."""
    parts = []
    for name in names:
        path = logs / f"{name}.log"
        if path.exists():
            parts.append(f"--- {path} (last {lines} lines) ---\n{_tail(path, lines)}")
    return "\n".join(parts)


def _tail(path: Path, lines: int, width: int = 400) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    tail = text.splitlines()[-lines:]
    return "\n".join(line if len(line) <= width else line[:width] + " [...]" for line in tail)


def _rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident memory of a process in KiB, from /proc; zeros if unknown."""
    current = peak = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return current, peak


# --------------------------------------------------------------------------------------------
# Certificates


@dataclasses.dataclass(frozen=True)
class Identity:
    """A client or server certificate and its key."""

    cert: Path
    key: Path


class Pki:
    """The cluster's certificate authority and the certificates made from it (openssl, P-256)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_cert = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        self.sa_key = directory / "service-account.key"
        self.sa_pub = directory / "service-account.pub"

    def create_ca(self) -> None:
        """Make the self-signed CA and the service-account token signing key pair."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _run_openssl(
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", self.ca_key.name, "-out", self.ca_cert.name,
                "-days", "3650", "-subj", "/CN=mlc-test-ca",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            ],
            self.directory,
        )  # fmt: skip
        _run_openssl(
            [
                "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.sa_key.name,
            ],
            self.directory,
        )  # fmt: skip
        _run_openssl(
            ["pkey", "-in", self.sa_key.name, "-pubout", "-out", self.sa_pub.name],
            self.directory,
        )

    def issue(
        self,
        name: str,
        common_name: str,
        organization: str | None = None,
        *,
        server_names: Iterable[str] = (),
        server_ips: Iterable[str] = (),
    ) -> Identity:
        """Issue a certificate signed by the CA; with names or IPs it is also a server cert."""
        key = self.directory / f"{name}.key"
        csr = self.directory / f"{name}.csr"
        cert = self.directory / f"{name}.crt"
        extensions = self.directory / f"{name}.ext"
        subject = (f"/O={organization}" if organization else "") + f"/CN={common_name}"
        _run_openssl(
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", key.name, "-out", csr.name, "-subj", subject,
            ],
            self.directory,
        )  # fmt: skip
        alt_names = [f"DNS:{n}" for n in server_names] + [f"IP:{ip}" for ip in server_ips]
        lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=" + ("serverAuth,clientAuth" if alt_names else "clientAuth"),
        ]
        if alt_names:
            lines.append("subjectAltName=" + ",".join(alt_names))
        extensions.write_text("\n".join(lines) + "\n")
        _run_openssl(
            [
                "x509", "-req", "-in", csr.name, "-CA", self.ca_cert.name,
                "-CAkey", self.ca_key.name, "-set_serial", str(int.from_bytes(os.urandom(8))),
                "-days", "3650", "-out", cert.name, "-extfile", extensions.name,
            ],
            self.directory,
        )  # fmt: skip
        csr.unlink()
        extensions.unlink()
        return Identity(cert=cert, key=key)


def write_kubeconfig(path: Path, server: str, ca_cert: Path, user: Identity) -> None:
    """Write a kubeconfig with absolute paths (JSON is valid kubeconfig YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mlc-test",
                "cluster": {"server": server, "certificate-authority": str(ca_cert)},
            }
        ],
        "users": [
            {
                "name": "mlc-test-user",
                "user": {"client-certificate": str(user.cert), "client-key": str(user.key)},
            }
        ],
        "contexts": [
            {"name": "mlc-test", "context": {"cluster": "mlc-test", "user": "mlc-test-user"}}
        ],
        "current-context": "mlc-test",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# A minimal API client (standard library only)


class ApiClient:
    """Just enough of the Kubernetes REST API to start a cluster: GET and POST of JSON."""

    def __init__(self, host: str, port: int, ca_cert: Path, user: Identity) -> None:
        self.host = host
        self.port = port
        self._context = ssl.create_default_context(cafile=str(ca_cert))
        self._context.load_cert_chain(str(user.cert), str(user.key))

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON (or text) body."""
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self._context, timeout=timeout
        )
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path``."""
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST ``body`` to ``path``."""
        return self.request("POST", path, body)


# --------------------------------------------------------------------------------------------
# The control plane


@dataclasses.dataclass
class Component:
    """One running process of the control plane."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1.

    All state lives in ``workdir``: certificates in ``pki/``, etcd's data in ``etcd/``, one log
    per component in ``logs/`` and the admin kubeconfig in ``kubeconfig``. The admin user is in
    ``system:masters``; the controller manager and scheduler run with their own identities
    under RBAC, as on a real cluster.
    """

    def __init__(
        self,
        workdir: Path | str,
        prefix: Path | str | None = None,
        nodes: Sequence[NodeSpec] = DEFAULT_NODES,
        host: str = "127.0.0.1",
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.prefix = Path(prefix) if prefix is not None else default_prefix()
        self.nodes: tuple[NodeSpec, ...] = tuple(nodes)
        self.host = host
        self.logs = self.workdir / "logs"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.pki = Pki(self.workdir / "pki")
        self.api_port = 0
        self.components: list[Component] = []
        self.startup_seconds: float | None = None
        self._admin: Identity | None = None
        self._api: ApiClient | None = None
        self._peak_kib: dict[str, int] = {}

    # -- public --------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The apiserver's URL."""
        return f"https://{self.host}:{self.api_port}"

    @property
    def api(self) -> ApiClient:
        """A standard-library client logged in as the cluster admin."""
        if self._api is None:
            raise ControlPlaneError("the control plane is not running")
        return self._api

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start every component, wait until the cluster is ready, create ``self.nodes``."""
        problems = missing_prerequisites(self.prefix)
        if problems:
            raise PrerequisiteMissing("; ".join(problems))
        began = time.monotonic()
        deadline = began + timeout
        try:
            self._prepare_workdir()
            self._start_etcd(deadline)
            self._start_apiserver(deadline)
            self._start_controllers()
            self._wait_for_controllers(deadline)
            self.create_nodes(self.nodes, timeout=max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the components in reverse order: SIGTERM, then SIGKILL after 10 s."""
        for component in reversed(self.components):
            self._record_peak(component)
            self._terminate(component)
        self.components.clear()
        self._api = None

    def restart_apiserver(
        self, down_seconds: float = 1.0, timeout: float = START_TIMEOUT_S
    ) -> None:
        """Stops kube-apiserver, waits `down_seconds`, and starts it again on the same port
        (for tests of clients that must ride out an API server restart)."""
        (component,) = [c for c in self.components if c.name == "kube-apiserver"]
        self._record_peak(component)
        self._terminate(component)
        self.components.remove(component)
        time.sleep(down_seconds)
        self._start_apiserver(time.monotonic() + timeout)

    def create_nodes(self, nodes: Iterable[NodeSpec], timeout: float = 60.0) -> None:
        """Create fake nodes and wait until each is Ready and free of the not-ready taint."""
        nodes = list(nodes)
        for node in nodes:
            status, body = self.api.post("/api/v1/nodes", node.manifest())
            if status == 409:
                continue
            if status >= 300:
                raise ControlPlaneError(f"could not create node {node.name}: {status} {body}")
        deadline = time.monotonic() + timeout
        for node in nodes:
            self._wait(
                f"node {node.name} to become Ready",
                functools.partial(self._node_ready, node.name),
                deadline,
            )

    def create_gpu_nodes(self, timeout: float = 60.0) -> None:
        """Create the GPU nodes of the default inventory (``start`` already does this)."""
        self.create_nodes([node for node in DEFAULT_NODES if node.gpus], timeout=timeout)

    def memory_kib(self) -> dict[str, tuple[int, int]]:
        """Resident memory per running component: (current, peak) in KiB."""
        return {c.name: _rss_kib(c.process.pid) for c in self.components}

    def peak_memory_kib(self) -> dict[str, int]:
        """Peak resident memory per component, also after ``stop``."""
        peaks = dict(self._peak_kib)
        for component in self.components:
            peaks[component.name] = max(
                peaks.get(component.name, 0), _rss_kib(component.process.pid)[1]
            )
        return peaks

    def describe_peak_memory(self) -> str:
        """One line: the components' summed and individual peak resident memory."""
        peaks = self.peak_memory_kib()
        details = ", ".join(f"{name} {_format_mib(kib)}" for name, kib in peaks.items())
        return f"peak RSS {_format_mib(sum(peaks.values()))} ({details})"

    def log_tails(self, lines: int = 25) -> str:
        """The last lines of every component log, for failure reports."""
        return log_tails(self.logs, COMPONENTS, lines)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start-up steps ------------------------------------------------------------------

    def _prepare_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for stale in ("etcd", "pki", "kubeconfigs"):
            shutil.rmtree(self.workdir / stale, ignore_errors=True)
        self.logs.mkdir(exist_ok=True)
        for name in COMPONENTS:
            (self.logs / f"{name}.log").unlink(missing_ok=True)
        self.api_port = free_port(self.host)
        advertise = _non_loopback_ipv4()
        self._advertise_address = advertise
        self.pki.create_ca()
        self._server_identity = self.pki.issue(
            "kube-apiserver",
            "kube-apiserver",
            server_names=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            server_ips=[self.host, "10.96.0.1", *([advertise] if advertise else [])],
        )
        self._admin = self.pki.issue("admin", "mlc-test-admin", "system:masters")
        # The aggregation layer's client: with it the apiserver publishes a complete
        # extension-apiserver-authentication ConfigMap, which the controllers read.
        self._front_proxy = self.pki.issue("front-proxy-client", "front-proxy-client")
        self._api = ApiClient(self.host, self.api_port, self.pki.ca_cert, self._admin)
        write_kubeconfig(self.kubeconfig, self.server, self.pki.ca_cert, self._admin)
        kubeconfigs = self.workdir / "kubeconfigs"
        kubeconfigs.mkdir()
        self._component_kubeconfigs: dict[str, Path] = {}
        for name, user in (
            ("kube-controller-manager", "system:kube-controller-manager"),
            ("kube-scheduler", "system:kube-scheduler"),
        ):
            identity = self.pki.issue(name, user)
            path = kubeconfigs / f"{name}.kubeconfig"
            write_kubeconfig(path, self.server, self.pki.ca_cert, identity)
            self._component_kubeconfigs[name] = path

    def _start_etcd(self, deadline: float) -> None:
        client_port, peer_port = free_port(self.host), free_port(self.host)
        client = f"http://{self.host}:{client_port}"
        peer = f"http://{self.host}:{peer_port}"
        self._etcd_url = client
        self._spawn(
            "etcd",
            [
                "--name=mlc-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=mlc-test={peer}",
                "--unsafe-no-fsync",
                "--auto-compaction-retention=1",
                "--quota-backend-bytes=2147483648",
                "--logger=zap",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            connection = http.client.HTTPConnection(self.host, client_port, timeout=2)
            try:
                connection.request("GET", "/health")
                body = connection.getresponse().read()
            except OSError:
                return False
            finally:
                connection.close()
            return b'"health":"true"' in body

        self._wait("etcd to report healthy", healthy, deadline)

    def _start_apiserver(self, deadline: float) -> None:
        pki = self.pki
        assert self._admin is not None
        args = [
            f"--etcd-servers={self._etcd_url}",
            f"--bind-address={self.host}",
            f"--secure-port={self.api_port}",
            f"--tls-cert-file={self._server_identity.cert}",
            f"--tls-private-key-file={self._server_identity.key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            f"--cert-dir={self.workdir / 'pki'}",
            f"--requestheader-client-ca-file={pki.ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self._front_proxy.cert}",
            f"--proxy-client-key-file={self._front_proxy.key}",
            # For a real node's kubelet (tests/k8s/node.py): logs, exec and attach go through
            # it, by its InternalIP, with a client certificate it trusts.
            f"--kubelet-client-certificate={self._admin.cert}",
            f"--kubelet-client-key={self._admin.key}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
        ]
        if self._advertise_address:
            # Loopback is refused here; the address only lands in the `kubernetes` Endpoints.
            args.append(f"--advertise-address={self._advertise_address}")
        self._spawn("kube-apiserver", args)
        self._wait("kube-apiserver to be ready (/readyz)", self._apiserver_ready, deadline)

    def _apiserver_ready(self) -> bool:
        try:
            status, body = self.api.request("GET", "/readyz", timeout=5)
        except (OSError, ssl.SSLError):
            return False
        return status == 200 and str(body).strip() == "ok"

    def _start_controllers(self) -> None:
        pki = self.pki
        kcm = self._component_kubeconfigs["kube-controller-manager"]
        scheduler = self._component_kubeconfigs["kube-scheduler"]
        self._kcm_port = free_port(self.host)
        self._scheduler_port = free_port(self.host)
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={kcm}",
                f"--authentication-kubeconfig={kcm}",
                f"--authorization-kubeconfig={kcm}",
                f"--bind-address={self.host}",
                f"--secure-port={self._kcm_port}",
                f"--cert-dir={self.workdir / 'pki'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # kwok renews node leases; a long grace period keeps a loaded machine's
                # nodes from being marked NotReady (and their pods evicted) mid-test.
                "--node-monitor-grace-period=3m20s",
                "--kube-api-qps=100",
                "--kube-api-burst=200",
                "--profiling=false",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={scheduler}",
                f"--authentication-kubeconfig={scheduler}",
                f"--authorization-kubeconfig={scheduler}",
                f"--bind-address={self.host}",
                f"--secure-port={self._scheduler_port}",
                f"--cert-dir={self.workdir / 'pki'}",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )
        self._spawn(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={STAGES_FILE}",
                # Only the fake nodes: a real node's kubelet reports its own status.
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--node-lease-duration-seconds=40",
                f"--cidr={POD_CIDR}",
                f"--node-ip={self.host}",
                f"--server-address={self.host}:{free_port(self.host)}",
            ],
        )

    def _wait_for_controllers(self, deadline: float) -> None:
        self._wait(
            "kube-controller-manager to create ServiceAccount default/default",
            lambda: self.api.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            deadline,
        )
        self._wait(
            "kube-scheduler to report healthy",
            lambda: _insecure_healthz(self.host, self._scheduler_port),
            deadline,
        )

    def _node_ready(self, name: str) -> bool:
        status, node = self.api.get(f"/api/v1/nodes/{name}")
        if status != 200:
            return False
        conditions = node.get("status", {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        taints = node.get("spec", {}).get("taints") or []
        not_ready = any(t.get("key", "").startswith("node.kubernetes.io/") for t in taints)
        return ready and not not_ready

    # -- processes -----------------------------------------------------------------------

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [*_parent_death_wrapper(), str(self.prefix / "bin" / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self.components.append(Component(name=name, process=process, log=log))

    def _wait(self, what: str, ready: Callable[[], bool], deadline: float) -> None:
        delay = 0.05
        while True:
            for component in self.components:
                code = component.process.poll()
                if code is not None:
                    raise ControlPlaneError(
                        f"{component.name} exited with status {code} while waiting for {what}; "
                        f"its log ends with:\n{_tail(component.log, 40)}"
                    )
            try:
                if ready():
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out waiting for {what}; logs are in {self.logs}\n{self.log_tails()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _record_peak(self, component: Component) -> None:
        peak = _rss_kib(component.process.pid)[1]
        self._peak_kib[component.name] = max(self._peak_kib.get(component.name, 0), peak)

    @staticmethod
    def _terminate(component: Component) -> None:
        process = component.process
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _insecure_healthz(host: str, port: int) -> bool:
    """GET /healthz of a component that serves a self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=2)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return response.status == 200 and response.read().strip() == b"ok"
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------
# Command line


def default_workdir() -> Path:
    """Where ``up`` keeps the cluster's state unless told otherwise."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"mlc-k8s-{os.getuid()}"


def _format_mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def _up(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    pid_file = workdir / "up.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, OSError):
            other = int(pid_file.read_text())
            os.kill(other, 0)
            print(f"a control plane (pid {other}) already runs in {workdir}", file=sys.stderr)
            return 1
    cluster = ControlPlane(workdir, prefix=args.prefix)
    stop_requested = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    try:
        cluster.start(timeout=args.timeout)
    except PrerequisiteMissing as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    real_node = None
    if args.real_node:
        from tests.k8s.node import RealNode  # imports this module

        real_node = RealNode(cluster)
        try:
            real_node.start(timeout=args.timeout)
        except (ControlPlaneError, KeyboardInterrupt) as error:
            cluster.stop()
            print(f"error: the real node did not start: {error}", file=sys.stderr)
            return 1
    pid_file.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    print(f"control plane ready in {cluster.startup_seconds:.1f} s at {cluster.server}")
    print(f"logs: {cluster.logs}")
    names = [node.name for node in cluster.nodes] + ([real_node.name] if real_node else [])
    print(f"nodes: {', '.join(names)}")
    if real_node is not None:
        print(f"real node ready in {real_node.startup_seconds:.1f} s; logs: {real_node.logs}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")
    print("press Ctrl-C to stop", flush=True)
    try:
        while not stop_requested:
            for component in cluster.components:
                code = component.process.poll()
                if code is not None:
                    print(
                        f"error: {component.name} exited with status {code}; see {component.log}",
                        file=sys.stderr,
                    )
                    stop_requested = True
            time.sleep(0.5)
    finally:
        print("stopping...", file=sys.stderr, flush=True)
        if real_node is not None:
            real_node.stop()
            for problem in real_node.leftovers():
                print(f"warning: the real node left {problem}", file=sys.stderr)
        cluster.stop()
        pid_file.unlink(missing_ok=True)
        print(f"stopped; {cluster.describe_peak_memory()}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.k8s.cluster up``: run a control plane in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.k8s.cluster",
        description="Run mlc's Kubernetes test control plane on 127.0.0.1.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the control plane; Ctrl-C stops it")
    up.add_argument(
        "--workdir",
        type=Path,
        default=default_workdir(),
        help="state, logs and kubeconfig (default: %(default)s)",
    )
    up.add_argument("--prefix", type=Path, default=None, help="where build.sh put the binaries")
    up.add_argument(
        "--real-node",
        action="store_true",
        help="also join a real node (containerd and a kubelet; needs root), see node.py",
    )
    up.add_argument(
        "--timeout", type=float, default=START_TIMEOUT_S, help="start-up timeout in seconds"
    )
    commands.add_parser("prefix", help="print where the binaries are expected")
    args = parser.parse_args(argv)
    if args.command == "prefix":
        print(default_prefix())
        return 0
    return _up(args)


if __name__ == "__main__":
    sys.exit(main())
