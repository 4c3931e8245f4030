"""The sweep example's steps: a linear model of house prices fitted by gradient descent.

Each function is a `call` step of `../pipeline.mlspec`. mlc calls it with keyword arguments:
the step's `args`, each input as a `pathlib.Path` (a list of them for a fan-in input) and each
output as a `pathlib.Path` to write. Only numpy is needed.
"""
