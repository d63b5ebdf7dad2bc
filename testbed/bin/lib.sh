# Shared by the test bed scripts: paths, pinned versions, logging. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TESTBED_DIR="$REPO_ROOT/testbed"

# Pinned versions of the servers. Changing one rebuilds that binary on the next run.
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16

# Built binaries and venvs live outside the clone, keyed by their inputs, so a second run
# (or a second clone) reuses them. CI may point NLB_PORT_POOL_CACHE at a cached directory.
CACHE_DIR=${NLB_PORT_POOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nlb-port-pool}

# Where a running bed is described. `make test` uses its own file so it never disturbs a bed
# (or local stack) a developer has running.
STACK_ENV=${NLB_STACK_ENV:-$REPO_ROOT/.local/stack.env}

AWS_BED_REGION=us-west-2

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A short hash of files, to key cache entries by their content.
content_hash() { cat "$@" | sha256sum | cut -c1-12; }

# A TCP port nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

etcd_bin() { echo "$CACHE_DIR/bin/etcd-$ETCD_VERSION-$(content_hash "$TESTBED_DIR/go/etcd/go.mod" "$TESTBED_DIR/go/etcd/go.sum" "$TESTBED_DIR/go/etcd/main.go")"; }
apiserver_bin() { echo "$CACHE_DIR/bin/kube-apiserver-$KUBE_VERSION-$(content_hash "$TESTBED_DIR/go/apiserver/go.mod" "$TESTBED_DIR/go/apiserver/go.sum" "$TESTBED_DIR/go/apiserver/main.go")"; }
moto_venv() { echo "$CACHE_DIR/venv-moto-$(content_hash "$TESTBED_DIR/python/moto-requirements.txt")"; }
