#!/usr/bin/env python3
"""Install the peer tier's programs into the running Python environment.

The versions come from the training image's pins (images/llama-factory/), so
the harness checks the rendered configs with what the image runs:
  1. torch (PEER_TORCH: the CPU wheel; the image's own torch comes from its base),
  2. the shared stack: `pip install -e '.[peer]'` (requirements-peer.txt),
  3. llamafactory without its dependencies (they would pull torchvision and
     torchaudio, which the parser never imports),
  4. deepspeed with no ops built (DS_BUILD_OPS=0) against the installed torch.
Idempotent: a marker in the environment records the pins it installed.

    .venv/bin/python scripts/install_peer.py
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "images" / "llama-factory"
PEER_TORCH = "torch==2.13.0"


def pin(name: str) -> str:
    """The `name==version` line of the image's requirements.txt."""
    m = re.search(rf"^{re.escape(name)}==\S+", (IMAGE / "requirements.txt").read_text(), re.M)
    if not m:
        raise SystemExit(f"images/llama-factory/requirements.txt pins no {name}")
    return m.group(0)


def pip(*args: str, env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True, env={**os.environ, **(env or {})}, cwd=ROOT)


def main() -> int:
    want = hashlib.sha256(
        "".join(
            [Path(__file__).read_text(), (IMAGE / "requirements.txt").read_text(), (IMAGE / "requirements-peer.txt").read_text()]
        ).encode()
    ).hexdigest()
    marker = Path(sys.prefix) / ".peer-installed"
    if marker.is_file() and marker.read_text() == want:
        print("peer tier: LLaMA-Factory, DeepSpeed and their stack already installed")
        return 0
    start = time.perf_counter()
    pip(PEER_TORCH)
    pip("-e", ".[peer]")
    pip("--no-deps", pin("llamafactory"))
    # LLaMA-Factory checks that liger-kernel is installed when a config enables it;
    # its kernels (triton, GPU) are never imported by the parser.
    pip("--no-deps", pin("liger-kernel"))
    pip("--no-build-isolation", pin("deepspeed"), env={"DS_BUILD_OPS": "0"})
    marker.write_text(want)
    print(f"peer tier: installed {pin('llamafactory')}, {pin('deepspeed')} and their stack in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
