"""mlc: a compiler for typed, declarative ML-pipeline specs."""

__version__ = "0.1.0"
