"""Offline tiers: prefetch every declared render in parallel before the tests run."""

import os

import pytest

from chartkit import helm

# Under pytest-xdist (make test runs the offline tiers on every core) each worker runs whole
# files (--dist loadfile) and does not know at collection which ones it will get.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def pytest_collection_finish(session):
    """Render up front, in parallel, every release the collected test modules
    declare in a module-level PREFETCH list (helm runs in threads; the tests
    then read the cache). Renders not declared still work, one at a time."""
    if session.config.option.collectonly or XDIST_WORKER:
        return
    jobs, seen = [], set()
    for item in session.items:
        module = item.module
        if id(module) not in seen:
            seen.add(id(module))
            jobs += list(getattr(module, "PREFETCH", ()))
    if jobs:
        helm.prefetch(jobs)


@pytest.fixture(autouse=True, scope="module")
def _prefetch_this_module(request):
    """Under xdist: a worker renders a file's PREFETCH list when it starts that file."""
    if XDIST_WORKER:
        helm.prefetch(getattr(request.module, "PREFETCH", ()))
