"""Peer tier: skipped, in one line, when the peer stack is not installed."""

import importlib.util


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
