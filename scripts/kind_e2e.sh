#!/usr/bin/env bash
# The cluster tier on a throwaway kind cluster: create it from a pinned node image, install
# the T9k CRDs (tests/crds/), run `pytest -m cluster tests/cluster`, and delete the cluster
# again, also when something fails or is interrupted.
#
#   scripts/kind_e2e.sh                              # Kubernetes 1.34, Helm 3
#   K8S_VERSION=1.31 CLUSTER_HELM_MAJOR=4 scripts/kind_e2e.sh
#   scripts/kind_e2e.sh -k serve -x                  # arguments go to pytest
#
# Needs: docker (a running daemon), kind (node images below are those published for kind
# v0.30.0), make and python3 >= 3.10 (`make setup` installs the venv and the pinned Helm 3, Helm 4
# and kubectl into .tools/). The serve test pulls vLLM's CPU image (a few GB) into the node
# and downloads a 270 MB model from the Hugging Face Hub: the machine needs internet, ~15 GB of
# free disk, 4 CPUs and 8 GB of memory for Docker.
#
# Environment:
#   K8S_VERSION         1.31 or 1.34 (default): picks the pinned node image
#   KIND_NODE_IMAGE     any node image instead (pin it by digest)
#   KIND_CLUSTER_NAME   default llf-e2e-<pid>; an existing cluster of that name is refused
#   KEEP_CLUSTER=1      leave the cluster running afterwards (for debugging)
#   E2E_LOGS_DIR        on failure, `kind export logs` writes the node logs there
#   CLUSTER_HELM_MAJOR  3 (default) or 4: which pinned Helm the tests use
#   CLUSTER_KUBECTL     kubectl to use (default: the pinned .tools/bin/kubectl)
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_TESTED=v0.30.0
K8S_VERSION=${K8S_VERSION:-1.34}
case "$K8S_VERSION" in
  1.31) default_image=kindest/node:v1.31.12@sha256:0f5cc49c5e73c0c2bb6e2df56e7df189240d83cf94edfa30946482eb08ec57d2 ;;
  1.34) default_image=kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a ;;
  *) echo "kind_e2e.sh: K8S_VERSION=$K8S_VERSION: use 1.31 or 1.34, or set KIND_NODE_IMAGE" >&2; exit 2 ;;
esac
NODE_IMAGE=${KIND_NODE_IMAGE:-$default_image}
CLUSTER=${KIND_CLUSTER_NAME:-llf-e2e-$$}

missing=()
command -v docker >/dev/null 2>&1 || missing+=("docker: https://docs.docker.com/engine/install/")
command -v kind >/dev/null 2>&1 || missing+=("kind $KIND_TESTED: https://kind.sigs.k8s.io/docs/user/quick-start/#installation")
command -v make >/dev/null 2>&1 || missing+=("make")
command -v python3 >/dev/null 2>&1 || missing+=("python3 (3.10 or newer)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "kind_e2e.sh: the cluster tier needs docker and kind; missing here:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "(without them, \`make test\` still runs every offline test and skips the cluster tier)" >&2
  exit 2
fi
if ! docker info >/dev/null 2>&1; then
  echo "kind_e2e.sh: docker is installed but its daemon does not answer (\`docker info\` failed): start it" >&2
  exit 2
fi
if ! kind version 2>/dev/null | grep -q "$KIND_TESTED"; then
  echo "kind_e2e.sh: warning: $(kind version 2>/dev/null || echo 'kind: unknown version'); the pinned node images are those of kind $KIND_TESTED" >&2
fi
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "kind_e2e.sh: a kind cluster named $CLUSTER exists already; delete it or set KIND_CLUSTER_NAME" >&2
  exit 2
fi

make setup
KUBECTL=${CLUSTER_KUBECTL:-$PWD/.tools/bin/kubectl}
export CLUSTER_KUBECTL=$KUBECTL

workdir=$(mktemp -d "${TMPDIR:-/tmp}/llf-kind.XXXXXX")
export KUBECONFIG=$workdir/kubeconfig
created=0
cleanup() {
  rc=$?
  trap - EXIT INT TERM
  if [ "$created" = 1 ]; then
    if [ "$rc" != 0 ] && [ -n "${E2E_LOGS_DIR:-}" ]; then
      kind export logs "$E2E_LOGS_DIR" --name "$CLUSTER" >/dev/null 2>&1 || true
      echo "kind_e2e.sh: node logs in $E2E_LOGS_DIR" >&2
    fi
    if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
      echo "kind_e2e.sh: keeping cluster $CLUSTER: export KUBECONFIG=$KUBECONFIG; delete with: kind delete cluster --name $CLUSTER" >&2
      exit "$rc"
    fi
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || echo "kind_e2e.sh: could not delete cluster $CLUSTER" >&2
  fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "kind_e2e.sh: cluster $CLUSTER from $NODE_IMAGE (Helm ${CLUSTER_HELM_MAJOR:-3}, $("$KUBECTL" version --client 2>/dev/null | head -n1))"
created=1
kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --kubeconfig "$KUBECONFIG" --wait 180s

"$KUBECTL" apply --server-side --field-manager=llama-factory-e2e \
  -f tests/crds/deepspeedjobs.batch.tensorstack.dev.yaml -f tests/crds/notebooks.tensorstack.dev.yaml
"$KUBECTL" wait --for=condition=Established --timeout=120s \
  crd/deepspeedjobs.batch.tensorstack.dev crd/notebooks.tensorstack.dev

# CLUSTER_REQUIRED=1: an unreachable cluster fails the run instead of skipping every test.
# KUBELET_REQUIRED=1: the tests of running containers (marked kubelet) must run here too.
CLUSTER_REQUIRED=1 KUBELET_REQUIRED=1 .venv/bin/python -m pytest -m cluster tests/cluster -p no:cacheprovider "$@"
