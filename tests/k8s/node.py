"""A real node for the test control plane: containerd and a kubelet on this machine.

The fake nodes of :mod:`tests.k8s.cluster` only pretend to run pods. :class:`RealNode` joins
one node that really does: a kubelet (built by ``build.sh`` from the same Kubernetes release),
Debian's containerd 1.6 with runc, a bridge CNI network, and two images made from this
machine's own files (``node_images.py``). Pods on it run Python 3.11 with the repository and
its virtual environment mounted read-only (:func:`project_mounts`), so a change to the code
needs no image rebuild.

It needs root, and it touches the host: mounts, cgroups, a network bridge, a few kernel
settings the kubelet insists on, and files in fixed places (``/var/lib/kubelet/device-plugins``,
``/var/log/containers``, ``/var/lib/cni``, ``/run/containerd/s``). Everything else lives in
its working directory. :meth:`RealNode.stop` stops the processes by PID and undoes each of
those changes; :meth:`RealNode.leftovers` says what (if anything) is still there.

From Python (the ``kube_real_node`` fixture in ``plugin.py`` does this)::

    with ControlPlane(workdir) as cluster, RealNode(cluster) as node:
        ...  # pods that tolerate REAL_NODE_TAINT and select REAL_NODE_LABEL run for real

Standard library only, like ``cluster.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.k8s.cluster import (
    BUILD_COMMAND,
    STOP_GRACE_S,
    Component,
    ControlPlane,
    ControlPlaneError,
    PrerequisiteMissing,
    _non_loopback_ipv4,
    _parent_death_wrapper,
    _rss_kib,
    _tail,
    default_prefix,
    free_port,
    log_tails,
    write_kubeconfig,
)
from tests.k8s.node_images import ARCHIVES, PAUSE_IMAGE, SITE_DIRS_VARIABLE, STEP_IMAGE

REPOSITORY = Path(__file__).resolve().parents[2]

REAL_NODE_NAME = "mlc-real-0"
#: Label of the real node; pods meant for it select it.
REAL_NODE_LABEL = ("mlc.test/node", "real")
#: Taint of the real node: only pods that tolerate it run there, so the fake-node tests'
#: pods (whose images do not exist) never land on it.
REAL_NODE_TAINT = ("mlc.test/real-node", "true", "NoSchedule")

#: What the node runs on, from Debian packages (``node-setup.sh`` installs them).
RUNTIME_COMMANDS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "mount", "umount")
CNI_BIN_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local")

#: Places outside the working directory where the kubelet, containerd or the CNI plugins
#: write (the paths are compiled in): ``stop`` removes what appeared there.
HOST_DIRECTORIES = (
    Path("/var/lib/kubelet"),
    Path("/var/lib/kubelet/device-plugins"),
    Path("/var/log/containers"),
    Path("/var/lib/cni"),
    Path("/var/lib/cni/results"),
    Path("/run/containerd"),
    Path("/run/containerd/s"),
)
#: Kernel settings the kubelet sets at start (or the bridge plugin): restored by ``stop``.
KERNEL_SETTINGS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
)
CGROUP_FS = Path("/sys/fs/cgroup")
#: One record per running real node (its PID, paths and the host's state before it started),
#: so that a node whose test process was killed is cleaned up by the next one to start.
REGISTRY = Path("/run/mlc-k8s-real-nodes")

START_TIMEOUT_S = 120.0
#: Event reasons that mean a pod's sandbox or container cannot start (the kubelet retries).
START_FAILURES = frozenset({"FailedCreatePodSandBox", "Failed", "FailedMount"})
#: How long ``stop`` lets the kubelet stop the pods still on the node.
DRAIN_TIMEOUT_S = 30.0


class RealNodeUnavailable(PrerequisiteMissing):
    """This machine cannot run the real node (no root, a missing package, no container)."""


# --------------------------------------------------------------------------------------------
# Prerequisites


def images_dir(prefix: Path | None = None) -> Path:
    """Where ``build.sh`` puts the image archives."""
    return (default_prefix() if prefix is None else prefix) / "node"


def missing_prerequisites(prefix: Path | None = None) -> list[str]:
    """Say, one line each, why the real node cannot start here (empty if nothing is missing)."""
    prefix = default_prefix() if prefix is None else prefix
    if not sys.platform.startswith("linux"):
        return [f"the real node needs Linux (this is {sys.platform})"]
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append(
            "the real node needs root: containerd and the kubelet make mounts, cgroups and "
            f"network namespaces (this process runs as uid {os.geteuid()})"
        )
    if not os.access(prefix / "bin" / "kubelet", os.X_OK):
        problems.append(f"the kubelet is not in {prefix}/bin: build it with `{BUILD_COMMAND}`")
    absent = [name for name in RUNTIME_COMMANDS if shutil.which(name) is None]
    absent += [f"{CNI_BIN_DIR}/{name}" for name in CNI_PLUGINS if not (CNI_BIN_DIR / name).exists()]
    if absent:
        problems.append(
            f"{', '.join(absent)} not found: run `{BUILD_COMMAND}` as root (it installs "
            "Debian's containerd, runc and containernetworking-plugins)"
        )
    archives = [name for name in ARCHIVES.values() if not (images_dir(prefix) / name).is_file()]
    if archives:
        problems.append(
            f"the node's images ({', '.join(archives)}) are not in {images_dir(prefix)}: "
            f"run `{BUILD_COMMAND}`"
        )
    if not (CGROUP_FS / "memory").is_dir() and not (CGROUP_FS / "cgroup.controllers").exists():
        problems.append(f"no memory cgroup under {CGROUP_FS}")
    if _non_loopback_ipv4() is None:
        problems.append("no non-loopback IPv4 address for the node (the kubelet refuses loopback)")
    return problems


# --------------------------------------------------------------------------------------------
# What pods on the node need


def site_packages() -> Path:
    """The site-packages of the Python running the tests (the project's virtual environment)."""
    return Path(sysconfig.get_paths()["purelib"]).resolve()


def project_mounts() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes, volume mounts and environment that give a pod the project's code.

    The repository and the virtual environment (when outside the repository) are mounted
    read-only at their host paths, so an editable install's paths stay valid; the step
    image's ``sitecustomize`` adds the site-packages named in ``MLC_SITE_DIRS``. The pods run
    Debian's Python 3.11, so the virtual environment must be a Python 3.11 one.
    """
    sources = [REPOSITORY]
    venv = Path(sys.prefix).resolve()
    if not venv.is_relative_to(REPOSITORY):
        sources.append(venv)
    volumes = []
    mounts = []
    for index, path in enumerate(sources):
        name = f"mlc-project-{index}"
        volumes.append({"name": name, "hostPath": {"path": str(path), "type": "Directory"}})
        mounts.append({"name": name, "mountPath": str(path), "readOnly": True})
    env = [
        {"name": SITE_DIRS_VARIABLE, "value": str(site_packages())},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    return volumes, mounts, env


def real_node_placement() -> dict[str, Any]:
    """The pod spec fields that send a pod to the real node (and only there)."""
    key, value, effect = REAL_NODE_TAINT
    return {
        "nodeSelector": {REAL_NODE_LABEL[0]: REAL_NODE_LABEL[1]},
        "tolerations": [{"key": key, "operator": "Equal", "value": value, "effect": effect}],
    }


# --------------------------------------------------------------------------------------------
# The host's state, before and after


def _read_setting(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text().strip()
    except OSError:
        return None


def _write_setting(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        (Path("/proc/sys") / name).write_text(value + "\n")


def _iptables_chains() -> set[tuple[str, str]]:
    """(table, chain) of every iptables chain, or nothing without iptables."""
    iptables = shutil.which("iptables")
    if iptables is None:
        return set()
    chains = set()
    for table in ("filter", "nat", "mangle"):
        result = subprocess.run(
            [iptables, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
        )
        for line in result.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("-N", "-P"):
                chains.add((table, parts[1]))
    return chains


def _mounts_under(roots: Sequence[Path]) -> list[Path]:
    """Mount points at or below any of ``roots``, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = Path(line.split()[4].replace("\\040", " "))
            if any(point == root or point.is_relative_to(root) for root in roots):
                found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


@dataclasses.dataclass
class HostSnapshot:
    """What the host looked like before the node started, to put it back afterwards."""

    existing_directories: dict[Path, frozenset[str] | None]
    settings: dict[str, str | None]
    iptables_chains: set[tuple[str, str]]

    @classmethod
    def take(cls) -> HostSnapshot:
        """Record the host's state now."""
        directories: dict[Path, frozenset[str] | None] = {}
        for directory in HOST_DIRECTORIES:
            try:
                directories[directory] = frozenset(os.listdir(directory))
            except OSError:
                directories[directory] = None
        settings = {name: _read_setting(name) for name in KERNEL_SETTINGS}
        for record in _records(alive=True):
            # Another node's kubelet already changed them: what counts is what it found.
            settings = HostSnapshot.from_json(record["snapshot"]).settings
            break
        return cls(
            existing_directories=directories,
            settings=settings,
            iptables_chains=_iptables_chains(),
        )

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON data (for the registry)."""
        return {
            "directories": {
                str(path): None if entries is None else sorted(entries)
                for path, entries in self.existing_directories.items()
            },
            "settings": self.settings,
            "iptables_chains": sorted(self.iptables_chains),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostSnapshot:
        """The snapshot that ``to_json`` wrote."""
        return cls(
            existing_directories={
                Path(path): None if entries is None else frozenset(entries)
                for path, entries in data["directories"].items()
            },
            settings=dict(data["settings"]),
            iptables_chains={(table, chain) for table, chain in data["iptables_chains"]},
        )


def _records(*, alive: bool) -> list[dict[str, Any]]:
    """The registry's records of nodes whose process is (or is no longer) alive, oldest first."""
    found = []
    for path in sorted(REGISTRY.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{record['pid']}").exists() == alive:
            found.append({**record, "path": str(path)})
    return found


def reclaim_stale_nodes() -> list[str]:
    """Clean up after real nodes whose test process died without stopping them.

    Their kubelet and containerd died with that process (``setpriv --pdeathsig``), but not
    their containers, mounts, cgroups and bridge. Returns what was cleaned.
    """
    cleaned = []
    for record in _records(alive=False):
        node = RealNode.__new__(RealNode)
        node._restore_from(record)
        node.stop()
        cleaned += [f"{record['workdir']} (pid {record['pid']}): {c}" for c in node.cleaned]
    return cleaned


# --------------------------------------------------------------------------------------------
# The node


class RealNode:
    """containerd and a kubelet joined to ``cluster`` as node ``mlc-real-0``.

    State lives in ``workdir`` (default: ``<cluster workdir>/real-node``): containerd's root
    and state, the kubelet's root directory, pod logs, the CNI configuration, certificates and
    one log per process in ``logs/``.
    """

    def __init__(
        self, cluster: ControlPlane, workdir: Path | str | None = None, name: str = REAL_NODE_NAME
    ) -> None:
        self.cluster = cluster
        #: False for a dead node being cleaned up after: no cluster to talk to.
        self._has_cluster = True
        self.workdir = Path(workdir or cluster.workdir / "real-node").resolve()
        self.name = name
        self.logs = self.workdir / "logs"
        self.components: list[Component] = []
        self.startup_seconds: float | None = None
        self.node_ip = _non_loopback_ipv4() or ""
        token = secrets.token_hex(3)
        self.cgroup_root = f"/mlc-k8s-{os.getpid()}-{token}"
        self.network_name = f"mlc-k8s-{token}"
        self.bridge = ""
        self.subnet = ""
        self._snapshot: HostSnapshot | None = None
        self._cleaned: list[str] = []
        self._peak_kib: dict[str, int] = {}

    # -- paths ---------------------------------------------------------------------------

    @property
    def containerd_socket(self) -> Path:
        """containerd's gRPC socket."""
        return self.workdir / "containerd" / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's ``--root-dir`` (pods' volumes are mounted below it)."""
        return self.workdir / "kubelet"

    @property
    def pod_logs(self) -> Path:
        """The kubelet's ``podLogsDir`` (instead of ``/var/log/pods``)."""
        return self.workdir / "pod-logs"

    def _owned_roots(self) -> list[Path]:
        return [self.workdir / "containerd", self.kubelet_root, self.workdir / "runc"]

    # -- public --------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start containerd and the kubelet, join the node, and run one probe pod on it."""
        problems = missing_prerequisites(self.cluster.prefix)
        if problems:
            raise RealNodeUnavailable("; ".join(problems))
        began = time.monotonic()
        deadline = began + timeout
        try:
            self._cleaned += [f"reclaimed {line}" for line in reclaim_stale_nodes()]
            self._snapshot = HostSnapshot.take()
            self._prepare()
            self._register()
            self._start_containerd(deadline)
            self._import_images()
            self._start_kubelet()
            self._wait(
                f"node {self.name} to become Ready", self._ready, deadline, show_kubelet=True
            )
            self._probe(deadline)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the pods, the kubelet and containerd, and undo what they did to the host."""
        if self._snapshot is None:
            return
        self._drain()
        for component in reversed(self.components):
            if component.name == "containerd":
                self._remove_tasks()
            self._record_peak(component)
            _terminate(component)
        self.components.clear()
        self._kill_leftover_processes()
        self._unmount()
        self._remove_cgroups()
        self._remove_network()
        self._restore_host()
        if not _mounts_under([self.workdir]):  # never delete below a mount point
            for directory in [*self._owned_roots(), self.pod_logs]:
                shutil.rmtree(directory, ignore_errors=True)
        self._delete_node_object()
        self._snapshot = None
        self._unregister()

    def leftovers(self) -> list[str]:
        """What this node left on the host after ``stop`` (empty when all is clean)."""
        found = []
        for point in _mounts_under([self.workdir]):
            found.append(f"mount {point}")
        for hierarchy in _cgroup_hierarchies():
            if (hierarchy / self.cgroup_root.lstrip("/")).exists():
                found.append(f"cgroup {hierarchy}{self.cgroup_root}")
        if self.bridge and Path(f"/sys/class/net/{self.bridge}").exists():
            found.append(f"network interface {self.bridge}")
        for pid in self._leftover_pids():
            found.append(f"process {pid} ({_cmdline(pid)[:80]})")
        return found

    @property
    def cleaned(self) -> list[str]:
        """What ``stop`` removed or restored on the host outside the working directory."""
        return list(self._cleaned)

    def describe_peak_memory(self) -> str:
        """One line: the peak resident memory of containerd and the kubelet."""
        peaks = dict(self._peak_kib)
        for component in self.components:
            peaks[component.name] = max(peaks.get(component.name, 0), _peak_rss(component))
        details = ", ".join(f"{name} {kib / 1024:.0f} MiB" for name, kib in peaks.items())
        return f"real node peak RSS {sum(peaks.values()) / 1024:.0f} MiB ({details})"

    def log_tails(self, lines: int = 25) -> str:
        """The last lines of containerd's and the kubelet's logs."""
        return log_tails(self.logs, ("containerd", "kubelet"), lines)

    def __enter__(self) -> RealNode:
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

    def _prepare(self) -> None:
        self._unmount()  # a previous node in this directory that was not stopped
        shutil.rmtree(self.workdir, ignore_errors=True)
        for directory in ("containerd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam", "logs"):
            (self.workdir / directory).mkdir(parents=True, exist_ok=True)
        self._choose_subnet()
        self._write_cni_config()
        self._write_containerd_config()
        self._write_kubelet_config()
        for hierarchy in _cgroup_hierarchies():
            (hierarchy / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)

    def _choose_subnet(self) -> None:
        """A /24 in 10.254.0.0/16 and a bridge name that no interface here uses yet."""
        taken = subprocess.run(
            ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False
        ).stdout
        # A bridge appears with the first pod: other live nodes' are also in the registry.
        interfaces = set(os.listdir("/sys/class/net")) | {r["bridge"] for r in _records(alive=True)}
        for index in range(1, 255):
            subnet = f"10.254.{index}."
            bridge = f"mlck8s{index}"
            if subnet not in taken and bridge not in interfaces:
                self.subnet, self.bridge = subnet + "0/24", bridge
                return
        raise ControlPlaneError("no free /24 in 10.254.0.0/16 for the real node's pods")

    def _write_cni_config(self) -> None:
        # No gateway and no masquerading: pods on the pod network reach only each other, and
        # nothing they send leaves this machine. Pods that need a service on the host (the
        # S3 test server, the API server) use hostNetwork and 127.0.0.1.
        config = {
            "cniVersion": "0.4.0",
            "name": self.network_name,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": False,
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.subnet}]],
                        "dataDir": str(self.workdir / "cni" / "ipam"),
                    },
                }
            ],
        }
        # containerd 1.6 reads this directory at start only: it must be written before.
        path = self.workdir / "cni" / "net.d" / "10-mlc.conflist"
        path.write_text(json.dumps(config, indent=2) + "\n")

    def _write_containerd_config(self) -> None:
        base = self.workdir / "containerd"
        runc = shutil.which("runc") or "runc"
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        text = f"""\
version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{self.containerd_socket}"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{base / "opt"}"
  [{cri}]
    sandbox_image = "{PAUSE_IMAGE}"
    # This machine's capability bounding set lacks CAP_SYS_RESOURCE: without this every
    # sandbox fails with "can't get final child's PID from pipe: EOF".
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    disable_apparmor = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [{cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [{cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [{cri}.containerd.runtimes.runc.options]
          BinaryName = "{runc}"
          Root = "{self.workdir / "runc"}"
          SystemdCgroup = false
    [{cri}.cni]
      bin_dir = "{CNI_BIN_DIR}"
      conf_dir = "{self.workdir / "cni" / "net.d"}"
"""
        (base / "config.toml").write_text(text)

    def _write_kubelet_config(self) -> None:
        pki = self.cluster.pki
        client = pki.issue(f"{self.name}-client", f"system:node:{self.name}", "system:nodes")
        serving = pki.issue(
            f"{self.name}-serving",
            f"system:node:{self.name}",
            server_names=[self.name],
            server_ips=[self.node_ip],
        )
        write_kubeconfig(self.workdir / "kubeconfig", self.cluster.server, pki.ca_cert, client)
        self.kubelet_port = free_port(self.node_ip)
        socket_url = f"unix://{self.containerd_socket}"
        key, value, effect = REAL_NODE_TAINT
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine has cgroup v1 (hybrid): kubelet 1.35+ refuses it unless told not to.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "failSwapOn": False,
            "containerRuntimeEndpoint": socket_url,
            "imageServiceEndpoint": socket_url,
            "address": self.node_ip,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "tlsCertFile": str(serving.cert),
            "tlsPrivateKeyFile": str(serving.key),
            "authentication": {
                "x509": {"clientCAFile": str(pki.ca_cert)},
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "registerWithTaints": [{"key": key, "value": value, "effect": effect}],
            "podLogsDir": str(self.pod_logs),
            # The KUBE-FIREWALL chain would drop traffic to 127.0.0.0/8 from other sources,
            # on the developer's machine too.
            "makeIPTablesUtilChains": False,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "maxPods": 32,
            "serializeImagePulls": False,
            "volumeStatsAggPeriod": "0s",
            "resolvConf": "/etc/resolv.conf",
        }
        (self.workdir / "kubelet.json").write_text(json.dumps(config, indent=2) + "\n")

    def _start_containerd(self, deadline: float) -> None:
        self._spawn(
            "containerd", ["containerd", "--config", str(self.workdir / "containerd/config.toml")]
        )
        self._wait("containerd to answer", lambda: self._ctr("version").returncode == 0, deadline)

    def _import_images(self) -> None:
        for image, archive in ARCHIVES.items():
            result = self._ctr(
                "-n", "k8s.io", "images", "import", str(images_dir(self.cluster.prefix) / archive)
            )
            if result.returncode != 0:
                raise ControlPlaneError(f"ctr could not import {image}:\n{result.stderr.strip()}")

    def _start_kubelet(self) -> None:
        kubelet = str(self.cluster.prefix / "bin" / "kubelet")
        label_key, label_value = REAL_NODE_LABEL
        self._spawn(
            "kubelet",
            [
                kubelet,
                f"--config={self.workdir / 'kubelet.json'}",
                f"--kubeconfig={self.workdir / 'kubeconfig'}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.workdir / 'kubelet-pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.node_ip}",
                f"--node-labels={label_key}={label_value}",
            ],
        )

    def _ready(self) -> bool:
        status, node = self.cluster.api.get(f"/api/v1/nodes/{self.name}")
        if status != 200:
            return False
        conditions = node.get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    def _probe(self, deadline: float) -> None:
        """Run one pod to completion: proof that a container can start here."""
        api = self.cluster.api
        namespace = "kube-system"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "mlc-real-node-probe", "namespace": namespace},
            "spec": {
                **real_node_placement(),
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "probe",
                        "image": STEP_IMAGE,
                        "imagePullPolicy": "Never",
                        "command": ["python3", "-c", "print('ok')"],
                    }
                ],
            },
        }
        path = f"/api/v1/namespaces/{namespace}/pods"
        status, body = api.post(path, pod)
        if status >= 300:
            raise ControlPlaneError(f"could not create the probe pod: {status} {body}")
        outcome: dict[str, Any] = {}

        def finished() -> bool:
            status, current = api.get(f"{path}/mlc-real-node-probe")
            if status != 200:
                return False
            outcome.update(current.get("status", {}))
            if outcome.get("phase") in ("Succeeded", "Failed"):
                return True
            # A sandbox or container that failed to start is retried for ever: stop at once.
            stuck = self._why_stuck()
            if stuck:
                outcome["stuck"] = stuck
            return bool(stuck)

        try:
            self._wait("the probe pod to finish", finished, deadline, on_timeout=self._why_stuck)
        finally:
            api.request("DELETE", f"{path}/mlc-real-node-probe")
        if outcome.get("phase") != "Succeeded":
            story = outcome.get("stuck") or _container_story(outcome)
            raise RealNodeUnavailable(f"a container could not start on the real node: {story}")

    def _why_stuck(self) -> str:
        """The probe pod's warnings: why its sandbox or container did not start."""
        status, events = self.cluster.api.get(
            "/api/v1/namespaces/kube-system/events"
            "?fieldSelector=involvedObject.name%3Dmlc-real-node-probe"
        )
        if status != 200:
            return ""
        return "; ".join(
            f"{e.get('reason')}: {e.get('message')}"
            for e in events.get("items", [])
            if e.get("type") == "Warning" and e.get("reason") in START_FAILURES
        )

    # -- stop steps ----------------------------------------------------------------------

    def _drain(self) -> None:
        """Delete the pods on the node and let the kubelet stop their containers."""
        if not any(c.name == "kubelet" and c.process.poll() is None for c in self.components):
            return
        with contextlib.suppress(Exception):
            api = self.cluster.api
            status, pods = api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.name}")
            for pod in pods.get("items", []) if status == 200 else []:
                meta = pod["metadata"]
                api.request(
                    "DELETE",
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                    {"gracePeriodSeconds": 0},
                )
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline and self._running_tasks():
                time.sleep(0.2)

    def _running_tasks(self) -> list[str]:
        result = self._ctr("-n", "k8s.io", "tasks", "ls")
        lines = result.stdout.splitlines()[1:]
        return [line.split()[0] for line in lines if "RUNNING" in line]

    def _remove_tasks(self) -> None:
        """Kill and delete every task, so that containerd's shims exit."""
        result = self._ctr("-n", "k8s.io", "tasks", "ls")
        for line in result.stdout.splitlines()[1:]:
            if line.split():
                self._ctr("-n", "k8s.io", "tasks", "rm", "-f", line.split()[0])

    def _leftover_pids(self) -> list[int]:
        """Processes of this node still alive: in its cgroups, or shims of its containerd."""
        pids = set()
        socket = str(self.containerd_socket)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                cgroups = Path(f"/proc/{pid}/cgroup").read_text()
            except OSError:
                continue
            in_cgroups = any(
                line.split(":", 2)[-1].startswith(self.cgroup_root) for line in cgroups.splitlines()
            )
            command = _cmdline(pid)
            if in_cgroups or ("containerd-shim" in command and socket in command):
                pids.add(pid)
        return sorted(pids)

    def _kill_leftover_processes(self) -> None:
        pids = self._leftover_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
            time.sleep(0.05)
        if pids:
            self._cleaned.append(f"killed {len(pids)} leftover processes")

    def _unmount(self) -> None:
        mounts = _mounts_under([self.workdir])
        for point in mounts:
            result = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
        if mounts:
            self._cleaned.append(f"unmounted {len(mounts)} mounts")

    def _remove_cgroups(self) -> None:
        removed = 0
        for hierarchy in _cgroup_hierarchies():
            top = hierarchy / self.cgroup_root.lstrip("/")
            if not top.exists():
                continue
            # Deepest first; a cgroup directory is removed with rmdir, never by its files.
            for directory in sorted(
                (Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True
            ):
                for _ in range(50):
                    try:
                        directory.rmdir()
                        removed += 1
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)  # the last task's exit is accounted a little later
        if removed:
            self._cleaned.append(f"removed {removed} cgroups under {self.cgroup_root}")

    def _remove_network(self) -> None:
        if self.bridge and Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
            self._cleaned.append(f"deleted the bridge {self.bridge}")

    def _restore_host(self) -> None:
        snapshot = self._snapshot
        assert snapshot is not None
        others = [r for r in _records(alive=True) if r["pid"] != os.getpid()]
        for name, before in snapshot.settings.items() if not others else ():
            now = _read_setting(name)
            if before is not None and now != before:
                _write_setting(name, before)
                self._cleaned.append(f"restored {name.replace('/', '.')} = {before} (was {now})")
        self._tidy_host_directories(snapshot)
        added = _iptables_chains() - snapshot.iptables_chains
        for table, chain in sorted(added):
            if chain.startswith(("KUBE-", "CNI-")):
                _delete_iptables_chain(table, chain)
                self._cleaned.append(f"deleted iptables chain {table}/{chain}")

    def _tidy_host_directories(self, snapshot: HostSnapshot) -> None:
        """Remove this node's files from the fixed host paths, and the directories it made.

        Another real node (another test session) may be using the same paths: only this
        node's entries, sockets nobody listens on and directories left empty are removed.
        """
        removed = []
        containers_log = Path("/var/log/containers")  # links to pod logs
        if containers_log.is_dir():
            for link in containers_log.iterdir():
                if link.is_symlink() and os.readlink(link).startswith(str(self.pod_logs)):
                    link.unlink()
                    removed.append(link)
        results = Path("/var/lib/cni/results")  # the CNI plugins' cache, by network name
        if results.is_dir():
            for entry in results.glob(f"{self.network_name}-*-eth0"):
                sandbox = entry.name.removeprefix(f"{self.network_name}-").removesuffix("-eth0")
                # containerd's own loopback network: removed by a sandbox's normal teardown.
                loopback = results / f"cni-loopback-{sandbox}-lo"
                for path in (entry, loopback):
                    if path.exists():
                        path.unlink()
                        removed.append(path)
        for directory in (Path("/var/lib/kubelet/device-plugins"), Path("/run/containerd/s")):
            if not directory.is_dir():
                continue
            entries = list(directory.iterdir())
            dead = [e for e in entries if e.is_socket() and not _listening(e)]
            for entry in dead:
                entry.unlink(missing_ok=True)
                removed.append(entry)
            checkpoint = directory / "kubelet_internal_checkpoint"
            before = snapshot.existing_directories.get(directory) or frozenset()
            live_kubelet = (directory / "kubelet.sock").exists()
            if checkpoint.exists() and checkpoint.name not in before and not live_kubelet:
                checkpoint.unlink()
                removed.append(checkpoint)
        for directory in sorted(HOST_DIRECTORIES, key=lambda p: len(p.parts), reverse=True):
            if snapshot.existing_directories.get(directory) is None and directory.is_dir():
                with contextlib.suppress(OSError):  # not empty: someone else's files are there
                    directory.rmdir()
                    removed.append(directory)
        if removed:
            self._cleaned.append(f"removed {', '.join(map(str, removed))}")

    def _register(self) -> None:
        assert self._snapshot is not None
        REGISTRY.mkdir(mode=0o700, exist_ok=True)
        record = {
            "pid": os.getpid(),
            "workdir": str(self.workdir),
            "name": self.name,
            "cgroup_root": self.cgroup_root,
            "network_name": self.network_name,
            "bridge": self.bridge,
            "snapshot": self._snapshot.to_json(),
        }
        self._record_path = REGISTRY / f"{self.network_name}.json"
        self._record_path.write_text(json.dumps(record, indent=2) + "\n")

    def _unregister(self) -> None:
        record_path: Path | None = getattr(self, "_record_path", None)
        if record_path is not None:
            record_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            REGISTRY.rmdir()  # only when no other node is registered

    def _restore_from(self, record: dict[str, Any]) -> None:
        """Become the (dead) node a registry record describes, to clean up after it."""
        self._has_cluster = False
        self.workdir = Path(record["workdir"])
        self.name = record["name"]
        self.logs = self.workdir / "logs"
        self.components = []
        self.startup_seconds = None
        self.cgroup_root = record["cgroup_root"]
        self.network_name = record["network_name"]
        self.bridge = record["bridge"]
        self._snapshot = HostSnapshot.from_json(record["snapshot"])
        self._cleaned = []
        self._peak_kib = {}
        self._record_path = Path(record["path"])

    def _delete_node_object(self) -> None:
        if not self._has_cluster:
            return
        with contextlib.suppress(Exception):
            self.cluster.api.request("DELETE", f"/api/v1/nodes/{self.name}")

    # -- processes -----------------------------------------------------------------------

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def _spawn(self, name: str, command: Sequence[str]) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [*_parent_death_wrapper(), *command],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self.components.append(Component(name=name, process=process, log=log))

    def _wait(
        self,
        what: str,
        ready: Callable[[], bool],
        deadline: float,
        *,
        show_kubelet: bool = False,
        on_timeout: Callable[[], str] | None = None,
    ) -> None:
        delay = 0.05
        while True:
            for component in self.components:
                code = component.process.poll()
                if code is not None:
                    raise ControlPlaneError(
                        f"{component.name} exited with status {code} while waiting for {what}; "
                        f"its log ends with:\n{_tail(component.log, 40)}"
                    )
            with contextlib.suppress(OSError, ControlPlaneError):
                if ready():
                    return
            if time.monotonic() > deadline:
                detail = on_timeout() if on_timeout else ""
                raise RealNodeUnavailable(
                    f"timed out waiting for {what}"
                    + (f": {detail}" if detail else "")
                    + f"; logs are in {self.logs}"
                    + (f"\n{self.log_tails()}" if show_kubelet else "")
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _record_peak(self, component: Component) -> None:
        self._peak_kib[component.name] = max(
            self._peak_kib.get(component.name, 0), _peak_rss(component)
        )


# --------------------------------------------------------------------------------------------
# Small helpers


def _cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 controllers, the v2 tree of a hybrid set-up)."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 1] in ("cgroup", "cgroup2"):
                found.append(Path(fields[4]))
    return sorted(set(found))


def _listening(path: Path) -> bool:
    """Whether a process accepts connections on the Unix socket ``path``."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _peak_rss(component: Component) -> int:
    return _rss_kib(component.process.pid)[1]


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


def _delete_iptables_chain(table: str, chain: str) -> None:
    """Remove the rules that jump to ``chain``, then the chain itself."""
    iptables = shutil.which("iptables") or "iptables"
    rules = subprocess.run(
        [iptables, "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
    ).stdout
    for rule in rules.splitlines():
        parts = rule.split()
        if parts[:1] == ["-A"] and f"-j {chain}" in rule and parts[1] != chain:
            subprocess.run([iptables, "-w", "-t", table, "-D", *parts[1:]], check=False)
    subprocess.run([iptables, "-w", "-t", table, "-F", chain], check=False)
    subprocess.run([iptables, "-w", "-t", table, "-X", chain], check=False)


def _container_story(status: dict[str, Any]) -> str:
    """What a pod's container statuses say about why it did not succeed."""
    parts = []
    for container in status.get("containerStatuses") or []:
        for state_name, state in (container.get("state") or {}).items():
            reason = state.get("reason", state_name)
            message = state.get("message", "")
            code = state.get("exitCode")
            parts.append(
                f"{container.get('name')}: {reason}"
                + (f" (exit code {code})" if code is not None else "")
                + (f": {message}" if message else "")
            )
    return "; ".join(parts) or f"pod phase {status.get('phase')}"


def describe_cleanup(node: RealNode) -> Iterable[str]:
    """Lines for the test summary: what was cleaned and what is left."""
    yield f"real node cleanup: {'; '.join(node.cleaned) or 'nothing outside its directory'}"
    left = node.leftovers()
    yield f"real node leftovers: {'; '.join(left) if left else 'none'}"
