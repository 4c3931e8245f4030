"""Built-in execution backends of mlc, registered through the `mlc.backends` entry points."""
