"""The IR: the typed, resolved pipeline DAG that every backend, the store and the runtime consume.

`mlc.ir.model` defines the serialisable document (frozen pydantic models, with a schema
version); `mlc.ir.graph` views it as a `networkx.DiGraph` keyed by typed ids; and
`mlc.ir.serialize` writes and reads canonical JSON.
"""
