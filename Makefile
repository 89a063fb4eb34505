# Entry points of the README. Each target installs what it needs first:
# a virtual environment with the harness's pinned packages, and pinned Helm
# 3 and 4 in .tools/ (scripts/install_helm.py).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= values/8b-2xdp.yaml
# PEER=0 skips installing the peer tier's LLaMA-Factory/DeepSpeed stack (about 1.6 GB);
# its tests then skip, saying so in one line. CI always installs it.
PEER   ?= 1
# The Kubernetes minors the cluster tier runs against (scripts/k8s/build.py pins them): the
# cluster tier against each (the offline tiers once). CI sets both.
K8S_MINORS ?= 1.34
# The offline tiers run on every core (pytest-xdist; JOBS=0 runs them in this process), whole
# test files per worker so that each render is made once; the cluster tier runs in one process
# (one control plane) per minor.
JOBS   ?= auto
XDIST  := $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)

.PHONY: check help setup peer k8s cluster render test test-fast lint docs clean e2e workflows fuzz

## This list: every target with the line above it.
help:
	@awk '/^## /{doc=(doc ? doc " " : "") substr($$0,4); next} /^[a-z][a-z0-9-]*:/{if(doc){split($$0,t,":"); printf "  make %-10s %s\n", t[1], doc}} {doc=""}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

## The harness's virtual environment (.venv/), pinned Helm 3 and 4 and checkov (.tools/).
setup: $(VENV)/.installed
	$(PY) scripts/install_helm.py
	$(PY) tests/test_checkov.py --install

## Render and validate every stage of a preset (no cluster), print a summary.
render: setup
	$(PY) scripts/render.py $(PRESET)

## The peer tier's programs: LLaMA-Factory and DeepSpeed at the training image's pins.
peer: setup
	$(PY) scripts/install_peer.py

## The cluster tier's control plane: Kubernetes, etcd and kwok built from pinned Go modules into .tools/k8s-<version>/.
k8s: setup
	$(PY) scripts/k8s/build.py $(K8S_MINORS)

## Quick checks, run first by make test: ruff (lint and format) over the Python, generated files current
## (values.schema.json, the README's values table, _decimals.tpl), the workflows, chart-testing's lint rules.
check: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) scripts/values_doc.py --check
	$(PY) scripts/check_workflows.py
	$(PY) scripts/chart_lint.py

## The whole test suite (with the peer tier unless PEER=0), the cluster tier on a local control plane.
test: setup check k8s $(if $(filter 0,$(PEER)),,peer)
	$(PY) -m pytest $(XDIST) -m "not cluster"
	$(foreach m,$(K8S_MINORS),K8S_MINOR=$(m) $(PY) -m pytest -m cluster tests/cluster &&) true

## The edit loop: the offline tiers without the peer stack and checkov, stopping at the first
## failure; renders come from the disk cache (out/render-cache/) when nothing they depend on changed.
test-fast: setup
	$(PY) -m pytest $(XDIST) -x -q -m "not cluster" --ignore=tests/peer --ignore=tests/test_checkov.py

## Only the cluster tier (K8S_MINORS=1.37 for the other minor).
cluster: setup k8s
	$(foreach m,$(K8S_MINORS),K8S_MINOR=$(m) $(PY) -m pytest -m cluster tests/cluster &&) true

## helm lint --strict of a preset under both Helm majors.
lint: setup
	.tools/bin/helm3 lint --strict . -f $(PRESET)
	.tools/bin/helm4 lint --strict . -f $(PRESET)

## The cluster tier on a throwaway kind cluster (needs docker and kind): K8S_VERSION=1.31|1.34 CLUSTER_HELM_MAJOR=3|4
e2e: setup
	scripts/kind_e2e.sh

## Validate .github/workflows offline.
workflows: setup
	$(PY) scripts/check_workflows.py

## Long property-based run of the values surface (FUZZ_EXAMPLES=2000 by default).
fuzz: setup
	FUZZ_PROFILE=long $(PY) -m pytest tests/test_fuzz_values.py -p no:cacheprovider --hypothesis-show-statistics

## Regenerate values.schema.json and the README values table from values.yaml.
docs: setup
	$(PY) scripts/values_doc.py --write

## Remove render output, the render cache and pytest's cache.
clean:
	rm -rf out .pytest_cache
