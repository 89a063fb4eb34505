"""Shared code of the chart's scripts and tests: rendering with pinned Helm,
Kubernetes schema validation, and the facts of the chart (presets, stages)."""
