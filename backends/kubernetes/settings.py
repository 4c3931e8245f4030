"""A Kubernetes target's settings, read and checked once: `KubeSettings.of(target)`.

`mlc lint` already refuses unknown keys; the values are checked here, before anything runs,
and each problem names the setting and what it expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlc.ir.model import JsonValue, Target

DEFAULT_NAMESPACE = "default"
DEFAULT_TTL_SECONDS = 86400
DEFAULT_PENDING_TIMEOUT_SECONDS = 15 * 60.0
DEFAULT_IMAGE_PULL_TIMEOUT_SECONDS = 120.0
DEFAULT_QPS = 50.0
DEFAULT_RUN_AS_USER = 1000
MIG_STRATEGIES = ("single", "mixed")


@dataclass(frozen=True)
class Accelerator:
    """What a portable GPU name means on the cluster: node labels and tolerations."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class KubeSettings:
    """Everything the backend reads from a target (see `capabilities.py` for each key)."""

    target: str = "(default)"
    namespace: str = DEFAULT_NAMESPACE
    image: str | None = None
    service_account: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    priority_class: str | None = None
    ttl_seconds_after_finished: int = DEFAULT_TTL_SECONDS
    queue: str | None = None
    pending_timeout_seconds: float = DEFAULT_PENDING_TIMEOUT_SECONDS
    image_pull_timeout_seconds: float = DEFAULT_IMAGE_PULL_TIMEOUT_SECONDS
    env_from_secrets: tuple[str, ...] = ()
    pod_template: Mapping[str, Any] = field(default_factory=dict)
    python: str = "python3"
    run_as_user: int = DEFAULT_RUN_AS_USER
    mig_strategy: str = "mixed"
    qps: float = DEFAULT_QPS
    kubeconfig: str | None = None
    context: str | None = None
    accelerators: Mapping[str, Accelerator] = field(default_factory=dict)

    @classmethod
    def of(cls, target: Target | None, base_dir: str | None = None) -> KubeSettings:
        """The settings of a target; raises `ValueError` listing every invalid value."""
        if target is None:
            return cls()
        reader = _Reader(target.settings)
        template_file = reader.text("pod_template")
        pod_template: Mapping[str, Any] = {}
        if template_file is not None:
            pod_template = reader.yaml_file("pod_template", template_file, base_dir)
        strategy = reader.text("mig_strategy") or "mixed"
        if strategy not in MIG_STRATEGIES:
            reader.problems.append("`mig_strategy` must be `single` or `mixed`")
        settings = cls(
            target=target.name,
            namespace=target.namespace or DEFAULT_NAMESPACE,
            image=reader.text("image"),
            service_account=reader.text("service_account"),
            image_pull_secrets=reader.texts("image_pull_secrets"),
            tolerations=reader.tables("tolerations"),
            node_selector=reader.text_table("node_selector"),
            labels=reader.text_table("labels"),
            annotations=reader.text_table("annotations"),
            priority_class=reader.text("priority_class"),
            ttl_seconds_after_finished=int(
                reader.seconds("ttl_seconds_after_finished", DEFAULT_TTL_SECONDS)
            ),
            queue=reader.text("queue"),
            pending_timeout_seconds=reader.seconds(
                "pending_timeout", DEFAULT_PENDING_TIMEOUT_SECONDS
            ),
            image_pull_timeout_seconds=reader.seconds(
                "image_pull_timeout", DEFAULT_IMAGE_PULL_TIMEOUT_SECONDS
            ),
            env_from_secrets=reader.texts("env_from_secrets"),
            pod_template=pod_template,
            python=reader.text("python") or "python3",
            run_as_user=int(reader.seconds("run_as_user", DEFAULT_RUN_AS_USER)),
            mig_strategy=strategy,
            qps=reader.seconds("qps", DEFAULT_QPS) or DEFAULT_QPS,
            kubeconfig=reader.text("kubeconfig"),
            context=reader.text("context"),
            accelerators=_accelerators(target.accelerators, reader.problems),
        )
        if reader.problems:
            raise ValueError(
                f"target `{target.name}`: " + "; ".join(dict.fromkeys(reader.problems))
            )
        return settings


@dataclass
class _Reader:
    values: Mapping[str, JsonValue]
    problems: list[str] = field(default_factory=list)

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.problems.append(f"`{key}` must be a non-empty string")
            return None
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problems.append(f"`{key}` must be a list of names")
            return ()
        return tuple(str(v) for v in value)

    def text_table(self, key: str) -> dict[str, str]:
        value = self.values.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"`{key}` must be a table of strings")
            return {}
        return {str(k): _text(v) for k, v in value.items()}

    def tables(self, key: str) -> tuple[Mapping[str, Any], ...]:
        value = self.values.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.append(f"`{key}` must be a list of tables")
            return ()
        return tuple(dict(v) for v in value if isinstance(v, dict))

    def seconds(self, key: str, default: float) -> float:
        value = self.values.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.problems.append(f"`{key}` must be a non-negative number")
            return default
        return float(value)

    def yaml_file(self, key: str, name: str, base_dir: str | None) -> Mapping[str, Any]:
        import yaml

        path = Path(base_dir or ".") / name
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            self.problems.append(f"`{key}` file `{path}` cannot be read: {exc}")
            return {}
        if not isinstance(loaded, dict):
            self.problems.append(f"`{key}` file `{path}` must hold a pod spec (a mapping)")
            return {}
        return loaded


def _text(value: JsonValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _accelerators(mapping: Mapping[str, JsonValue], problems: list[str]) -> dict[str, Accelerator]:
    """`"t4" = "Tesla-T4"` (the GPU product label) or `{ node_selector, tolerations }`."""
    accelerators = {}
    for name, value in mapping.items():
        if isinstance(value, str):
            accelerators[name] = Accelerator({"nvidia.com/gpu.product": value})
            continue
        if not isinstance(value, dict):
            problems.append(f"accelerator `{name}` must be a product label or a table")
            continue
        reader = _Reader(value, problems)
        accelerators[name] = Accelerator(
            reader.text_table("node_selector"), reader.tables("tolerations")
        )
    return accelerators
