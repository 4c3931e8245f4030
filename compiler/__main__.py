"""`python -m mlc` runs the command line."""

from mlc.cli.main import entry

entry()
