"""`python -m harness.fuzz minimize FAILURES.jsonl` (see harness.fuzz.minimiser)."""

import sys

from .minimiser import _main

sys.exit(_main(sys.argv[1:]))
