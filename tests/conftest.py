"""Offline tiers: prefetch every declared render in parallel before the tests run."""
from chartkit import helm


def pytest_collection_finish(session):
    """Render up front, in parallel, every release the collected test modules
    declare in a module-level PREFETCH list (helm runs in threads; the tests
    then read the cache). Renders not declared still work, one at a time."""
    if session.config.option.collectonly:
        return
    jobs, seen = [], set()
    for item in session.items:
        module = item.module
        if id(module) not in seen:
            seen.add(id(module))
            jobs += list(getattr(module, "PREFETCH", ()))
    if jobs:
        helm.prefetch(jobs)
