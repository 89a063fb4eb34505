"""Experiment hook of scripts/gpu_proof.py (issue 17), not part of the chart: put on PYTHONPATH
only by runs that name it in gpu_proof.RUN_ENV.

GPU_PROOF_CKPT_LAYERS=K: partial gradient checkpointing. LLaMA-Factory enables checkpointing on
every decoder layer (llamafactory.model.model_utils.checkpointing); this keeps it on the first K
layers (self_attn.layer_idx < K) and runs the others plainly, so they keep their activations for
backward (more memory, no recomputation). Applied when LLaMA-Factory's module is imported, by
wrapping its get_custom_gradient_checkpointing_func; every process prints one line saying so.

Any other sitecustomize on sys.path is still run afterwards.
"""

import importlib.abc
import importlib.util
import os
import sys
from functools import partial

TARGET = "llamafactory.model.model_utils.checkpointing"


def _patch(module) -> None:
    k = int(os.environ["GPU_PROOF_CKPT_LAYERS"])
    orig = module.get_custom_gradient_checkpointing_func
    seen = set()

    def get_custom_gradient_checkpointing_func(gradient_checkpointing_func):
        inner = orig(gradient_checkpointing_func)

        def partial_checkpointing(func, *args, **kwargs):
            layer = func.func.__self__ if isinstance(func, partial) else func.__self__
            idx = getattr(getattr(layer, "self_attn", None), "layer_idx", None)
            plain = idx is not None and idx >= k
            if idx not in seen:
                seen.add(idx)
                if len(seen) == 1 or idx == k:
                    print(
                        f"gpu_proof partial checkpointing: layer {idx} "
                        f"{'runs without checkpointing' if plain else 'is checkpointed'} (K={k})",
                        file=sys.stderr,
                        flush=True,
                    )
            return func(*args, **kwargs) if plain else inner(func, *args, **kwargs)

        return partial_checkpointing

    module.get_custom_gradient_checkpointing_func = get_custom_gradient_checkpointing_func
    print(f"gpu_proof partial checkpointing: first {k} decoder layers checkpointed", file=sys.stderr, flush=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


if os.environ.get("GPU_PROOF_CKPT_LAYERS"):
    sys.meta_path.insert(0, _Finder())

# Chain to the next sitecustomize (e.g. one the Python installation ships).
_here = os.path.dirname(os.path.abspath(__file__))
for _d in sys.path:
    if _d and os.path.abspath(_d) != _here and os.path.isfile(os.path.join(_d, "sitecustomize.py")):
        _spec = importlib.util.spec_from_file_location("_next_sitecustomize", os.path.join(_d, "sitecustomize.py"))
        _mod = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_mod)
        break
