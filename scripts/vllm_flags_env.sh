#!/usr/bin/env bash
# Build a throwaway venv in which vLLM's `vllm serve` argument parser imports
# on a CPU-only machine, and run scripts/vllm_flags.py in it (arguments are
# passed on, e.g. --check). Regenerates tests/peer/vllm_flags.json.
#
#   bash scripts/vllm_flags_env.sh            # write the table
#   bash scripts/vllm_flags_env.sh --check    # exit 1 if it is stale
#
# Every package is pinned and installed with --no-deps, from wheels only, so
# the venv holds exactly the list below: vLLM, the CPU build of torch, and
# the pure-Python (or small binary) packages that the import chain of the
# parser needs, found by trial. vLLM's own requirements (CUDA torch 2.8,
# xformers, ray, ...) are deliberately not installed: none of them is
# imported to build the parser. The other pins are releases of around
# vLLM 0.11.0's release (October 2025); they do not change the table.
#
# torch must be the CPU wheel (2.13.0+cpu); never a CUDA build. Where the
# default index has no such wheel, point pip at one that does with
# VLLM_FLAGS_PIP_ARGS (extra pip options for the install) or set
# VLLM_FLAGS_TORCH to another CPU build of torch.
#
# Env: VLLM_FLAGS_VENV (default /tmp/vllmenv), VLLM_FLAGS_PYTHON (python3.11),
#      VLLM_FLAGS_TORCH (torch==2.13.0+cpu), VLLM_FLAGS_PIP_ARGS (empty),
#      VLLM_FLAGS_FRESH=1 to rebuild the venv even if it holds these pins.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_FLAGS_VENV:-/tmp/vllmenv}"
PYTHON="${VLLM_FLAGS_PYTHON:-python3.11}"
TORCH="${VLLM_FLAGS_TORCH:-torch==2.13.0+cpu}"
VLLM_VERSION="0.11.0"   # = images.vllm.tag in values.yaml (v0.11.0)

case "$VENV" in
  "$ROOT"|"$ROOT"/*) echo "VLLM_FLAGS_VENV must lie outside the repository" >&2; exit 2 ;;
esac

PINS=(
  "vllm==${VLLM_VERSION}"
  "$TORCH"
  # torch
  filelock==3.19.1 fsspec==2025.9.0 Jinja2==3.1.6 MarkupSafe==3.0.3
  mpmath==1.3.0 networkx==3.5 setuptools==79.0.1 sympy==1.14.0
  typing_extensions==4.15.0
  # vllm.config, vllm.utils, transformers
  numpy==2.2.6 transformers==4.57.1 tokenizers==0.22.1
  huggingface-hub==0.35.3 hf-xet==1.1.10 safetensors==0.6.2
  PyYAML==6.0.3 regex==2025.9.18 requests==2.32.5 certifi==2025.8.3
  charset-normalizer==3.4.3 idna==3.10 urllib3==2.5.0 packaging==25.0
  tqdm==4.67.1 cachetools==6.2.0 cbor2==5.7.0 cloudpickle==3.1.1
  psutil==7.1.0 setproctitle==1.3.7 pyzmq==27.1.0 blake3==1.0.7
  msgspec==0.19.0 pillow==11.3.0 py-cpuinfo==9.0.0 diskcache==5.6.3
  pydantic==2.11.10 pydantic-core==2.33.2 annotated-types==0.7.0
  typing-inspection==0.4.2
  aiohttp==3.12.15 aiohappyeyeballs==2.6.1 aiosignal==1.4.0 attrs==25.3.0
  frozenlist==1.7.0 multidict==6.6.4 propcache==0.3.2 yarl==1.20.1
  # vllm.entrypoints (the OpenAI-compatible server that defines the frontend flags)
  fastapi==0.118.0 starlette==0.48.0 anyio==4.11.0 sniffio==1.3.1
  python-multipart==0.0.20 uvicorn==0.37.0 h11==0.16.0 click==8.3.0
  uvloop==0.21.0 watchfiles==1.1.0
  prometheus-client==0.23.1 prometheus-fastapi-instrumentator==7.1.0
  openai==2.1.0 httpx==0.28.1 httpcore==1.0.9 jiter==0.11.0 distro==1.9.0
  openai-harmony==0.0.4 partial-json-parser==0.2.1.1.post6 pybase64==1.4.2
)

start=$SECONDS
if [[ "${VLLM_FLAGS_FRESH:-0}" != 1 && -x "$VENV/bin/python" && -f "$VENV/.vllm_flags_env" ]] \
   && [[ "$(cat "$VENV/.vllm_flags_env")" == "${PINS[*]}" ]]; then
  echo "reusing $VENV (same pins; VLLM_FLAGS_FRESH=1 rebuilds it)"
else
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --no-deps --only-binary=:all: \
    ${VLLM_FLAGS_PIP_ARGS:-} "${PINS[@]}"
  # Refuse a CUDA torch: it would mean the wrong (multi-GB) wheel was taken.
  "$VENV/bin/python" - <<'EOF'
import torch, sys
if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} is a CUDA build; install the CPU wheel")
EOF
  echo "${PINS[*]}" > "$VENV/.vllm_flags_env"
  echo "built $VENV in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1))"
fi

cd "$ROOT"
exec "$VENV/bin/python" scripts/vllm_flags.py "$@"
