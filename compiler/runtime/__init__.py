"""The step runtime: what every backend does around a step, small enough to run in a container.

It depends on the standard library, Jinja2, `mlc.ir` and `mlc.store` only (an import-linter
contract keeps backends, the CLI, Ray and Kubernetes out), because the Ray and Kubernetes
backends run it inside workers and containers.

- `invocation`: `Invocation`, `invocations_of` — a step, or one item of a `foreach` step
- `templates`: `render_template`, `render_argv` — sandboxed Jinja2, StrictUndefined, shell quoting
- `context`: `template_context`, `call_arguments`, `RunInfo`, `StepPaths` — what a step sees
- `wiring`: `wire_inputs` — input digests from datasets and upstream outputs
- `workdir`: `prepare_attempt`, `collect_outputs`, `empty_attempt` — inputs in read-only,
  outputs into the store, the directory emptied for the next attempt
- `task`: `Task`, `TaskResult`, `execute_task` — one rendered attempt, run in this process
- `attempt`: `AttemptPlan`, `carry_out` — a whole attempt where it executes, reported twice
- `process`: `run_process`, `terminate_group` — process groups, SIGTERM then SIGKILL
- `calls`: `call_step_function` — `module:function` with paths as keyword arguments
- `worker`: `python -m mlc.runtime.worker` — a long-lived process carrying out attempts
- `metrics`: `check_metrics`, `load_metrics` — metrics outputs and their declared types
- `conditions`, `gates`: `evaluate`, `gate_open` — `when` conditions on upstream metrics
- `cache_key`: `cache_key_parts`, `explain_change` — the key, kept in parts to explain misses
- `cache_entries`: `lookup`, `remember` — cache entries as records in the store
- `decisions`: `decide` — cached or run, and why
- `plan`: `make_plan` — the whole pipeline's plan before a run
- `code_digest`, `secrets`, `datasets`, `lockfile` — code digests, secrets from the
  environment, dataset resolution, `mlc.lock`
"""
