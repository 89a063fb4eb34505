#!/usr/bin/env python3
"""The image reference the chart defaults to for one of values.yaml's `images.*`, for CI's image
job (build and push the image the chart pulls, never a second copy of its name).

    python scripts/image_ref.py llamaFactory                 # docker.io/t9kpublic/llama-factory:0.9.5-ds0.19.8
    python scripts/image_ref.py llamaFactory --registry ghcr.io/acme --github-output
        # image=ghcr.io/acme/t9kpublic/llama-factory:0.9.5-ds0.19.8, registry=ghcr.io (for $GITHUB_OUTPUT)

--registry replaces the registry as the chart's `common.imageRegistry` does (a mirror).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def image_ref(name: str, registry: str = "", values: Path = ROOT / "values.yaml") -> str:
    images = yaml.safe_load(values.read_text())["images"]
    if name not in images:
        raise SystemExit(f"image_ref.py: values.yaml has no images.{name}; it has {', '.join(images)}")
    image = images[name]
    host = registry or image["registry"]
    if image.get("digest"):
        return f"{host}/{image['repository']}@{image['digest']}"
    return f"{host}/{image['repository']}:{image['tag']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a key of values.yaml's images (llamaFactory, vllm, notebook, test)")
    parser.add_argument("--registry", default="", help="registry (and path prefix) instead of the default")
    parser.add_argument("--github-output", action="store_true", help="print image= and registry= lines")
    args = parser.parse_args(argv)
    ref = image_ref(args.name, args.registry)
    if args.github_output:
        print(f"image={ref}\nregistry={ref.split('/', 1)[0]}")
    else:
        print(ref)
    return 0


if __name__ == "__main__":
    sys.exit(main())
