"""Peer tier: skipped, in one line, when the peer stack is not installed. Its programs run in
forks of one process per test worker that imported the stack once (harness.forkserver)."""

import importlib.util
import os

import pytest

from chartkit.chart import ROOT
from harness.forkserver import Server

# What the peer programs import: the server imports it once, every run starts with it.
PRELOAD = ["torch", "transformers", "peft", "deepspeed", "llamafactory.train.tuner", "llamafactory.hparams.parser", "llamafactory.cli"]
# The environment every peer program runs in (offline, CPU only); the distributed variables of
# an enclosing run never leak in. Read at import by some of PRELOAD, so the server starts with it.
ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "CUDA_VISIBLE_DEVICES": "",
    "TOKENIZERS_PARALLELISM": "false",
    "DISABLE_VERSION_CHECK": "0",
    "PYTHONUNBUFFERED": "1",
}
DISTRIBUTED = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# LLaMA-Factory's data module imports its multimodal plugin, which imports torchaudio at module
# level; none is published for the peer stack's torch, and text SFT and export never use it.
# Without a real one the programs run with a placeholder package that fails on any use: a run
# either never touches it or its test fails.
PLACEHOLDER = '''"""Placeholder for the peer tier (tests/peer/conftest.py): fails on any use."""
def __getattr__(name):
    raise RuntimeError(f"torchaudio.{name}: torchaudio is not installed in the peer tier (placeholder)")
'''


def peer_missing() -> str | None:
    missing = [m for m in ("llamafactory", "deepspeed") if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"peer tier: {', '.join(missing)} not installed (make test installs them; PEER=0 skips the "
            f"install): LLaMA-Factory/DeepSpeed checks did not run"
        )
    return None


def pytest_report_header(config):
    return peer_missing() or "peer tier: LLaMA-Factory and DeepSpeed installed; configs are checked by their parsers"


@pytest.fixture(scope="session")
def peer_stack(tmp_path_factory) -> Server:
    """The forkserver the peer programs run in: `peer_stack.run("-m", "harness.peer", ...)`."""
    d = tmp_path_factory.mktemp("peer-stack")
    path = [str(ROOT / "scripts"), str(ROOT / "tests")]
    if importlib.util.find_spec("torchaudio") is None:
        (d / "site" / "torchaudio").mkdir(parents=True)
        (d / "site" / "torchaudio" / "__init__.py").write_text(PLACEHOLDER)
        path.insert(0, str(d / "site"))
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED}
    env.update(ENV, PYTHONPATH=os.pathsep.join(path))
    server = Server(str(d / "sock"), PRELOAD, env)
    yield server
    server.stop()
