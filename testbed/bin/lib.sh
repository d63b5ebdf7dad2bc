# Shared by the test bed scripts: paths, pinned versions, logging. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TESTBED_DIR="$REPO_ROOT/testbed"

# Pinned versions of the servers. Changing one rebuilds that binary on the next run.
KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v4.3.2

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
# kube-apiserver, kube-controller-manager and kube-scheduler in one binary: `kube <component> ...`.
kube_bin() { echo "$CACHE_DIR/bin/kube-$KUBE_VERSION-$(content_hash "$TESTBED_DIR/go/kube/go.mod" "$TESTBED_DIR/go/kube/go.sum" "$TESTBED_DIR/go/kube/main.go")"; }
# kwok, the bed's kubelet: fake nodes whose pods go through the stages of testbed/kwok/.
kwok_bin() { echo "$CACHE_DIR/bin/kwok-$KWOK_VERSION-$(content_hash "$TESTBED_DIR/go/kwok/go.mod" "$TESTBED_DIR/go/kwok/go.sum")"; }
# helm, for the chart in deploy/chart: lint, and `helm template` (deploy/'s files are rendered
# from it by testbed/bin/render-deploy; the container tests apply it to the bed).
helm_bin() { echo "$CACHE_DIR/bin/helm-$HELM_VERSION-$(content_hash "$TESTBED_DIR/go/helm/go.mod" "$TESTBED_DIR/go/helm/go.sum")"; }
moto_venv() { echo "$CACHE_DIR/venv-moto-$(content_hash "$TESTBED_DIR/python/moto-requirements.txt")"; }

# --- Containers (docker-up, docker-down, lambda-base-image, install-sam-tools) ---
# Every container the project starts carries this label (`docker run --label "$DOCKER_TEST_LABEL"`),
# so docker-down removes those and nothing else on an engine it did not start.
DOCKER_TEST_LABEL=nlb-port-pool.test=1
# Where docker-up keeps dockerd's log and pid file when it starts the engine itself. Per clone:
# a run in another clone (CI) never stops an engine this one started, nor the reverse.
DOCKER_STATE=${NLB_DOCKER_STATE:-$REPO_ROOT/.local/docker}
# The local stand-in for SAM's provided.al2023 image (testbed/docker/README.md).
LAMBDA_BASE_REPO=nlb-port-pool/lambda-base
# Docker's default bridge: SAM puts its containers there, and they reach the host at this
# address (or as host.docker.internal with `--add-host host.docker.internal:host-gateway`).
DOCKER_BRIDGE_GATEWAY=172.17.0.1

# True when a Docker engine answers.
docker_answers() { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }

# Makes sure apt knows package versions (a fresh machine may have no lists yet).
apt_lists_ready() { # package whose candidate must be known
  apt_candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
  case $(apt_candidate "$1") in
    '' | '(none)')
      log "apt-get update (apt knows no version of $1 yet)"
      apt-get update -qq >&2 || die "apt-get update failed" ;;
  esac
  case $(apt_candidate "$1") in '' | '(none)') die "apt has no package $1" ;; esac
}

make_venv() { # dir, requirements file
  local dir=$1 requirements=$2
  [ -f "$dir/.complete" ] && return 0
  log "creating $(basename "$dir") from $(basename "$requirements")"
  rm -rf "$dir"
  python3 -m venv "$dir" || die "python3 -m venv failed (Debian needs the python3-venv package)"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
    || die "pip install -r $requirements failed"
  touch "$dir/.complete"
}

# aws-sam-cli, cfn-lint, cargo-lambda and zig (ziglang), pinned; installed by install-sam-tools.
sam_venv() { echo "$CACHE_DIR/venv-sam-$(content_hash "$TESTBED_DIR/python/sam-requirements.txt")"; }
# `sam local invoke` asks STS for the account id before every call; with no endpoint of the bed
# set it would try real AWS (and wait ~8 s). A closed local port makes it fail at once and use
# SAM's default account id.
SAM_LOCAL_STS_ENDPOINT=http://127.0.0.1:9
# Puts the SAM venv first on PATH: cargo lambda finds zig through the first `python3` on PATH.
# SAM's telemetry is off: no test talks to AWS (see also SAM_LOCAL_STS_ENDPOINT and sam-tools).
use_sam_tools() {
  local venv; venv=$(sam_venv)
  [ -f "$venv/.complete" ] || die "the SAM tools are not installed: run testbed/bin/install-sam-tools"
  export PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0
}
