"""The test harness's own code, imported only by the tests (tests/ is on pytest's pythonpath):
`testkit` (releases of a preset, rendered once per process), `invariants` (plain functions
over a render), `fuzz` (the values fuzzer), `peer` (LLaMA-Factory's and DeepSpeed's parsers,
run as `python -m harness.peer`), `forkserver` and `tiny_llama` (the peer tier's process server
and tiny model) and `vllm_args` (vLLM's flag table). What the scripts
import too lives in scripts/chartkit/."""
