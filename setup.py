"""Maps the source folders onto the import package: `compiler/` is `mlc`, `backends/` is `mlc.backends`."""

from setuptools import find_packages, setup

packages = ["mlc", *(f"mlc.{p}" for p in find_packages("compiler"))]
packages += ["mlc.backends", *(f"mlc.backends.{p}" for p in find_packages("backends"))]

setup(packages=packages, package_dir={"mlc": "compiler", "mlc.backends": "backends"})
