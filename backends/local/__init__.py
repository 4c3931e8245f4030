"""The local backend: runs pipelines as processes on this machine (the embedded default).

`LocalBackend` is registered under the `mlc.backends` entry point `local`.
"""

from mlc.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
