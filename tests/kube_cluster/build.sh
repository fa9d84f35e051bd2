#!/usr/bin/env bash
# Builds (or reuses) the control plane the `kubernetes` tests run against, from source through the Go
# module proxy: kube-apiserver from k8s.io/kubernetes (a throwaway module pins the staging modules with
# `replace`, as k8s.io/kubernetes' own go.mod points them at ./staging, which a module zip does not
# carry) and etcd from go.etcd.io/etcd/server/v3 (Debian's etcd-server is 3.4). It also fetches the
# real CRDs from the engines' Go modules (KServe's InferenceService, Argo Rollouts').
#
# For the Argo Rollouts engine it builds the real controllers as well: kube-controller-manager and
# kube-scheduler (same module set as kube-apiserver, so Go's build cache is warm by then), kwok
# (sigs.k8s.io/kwok: fake nodes whose pods become Ready) and Argo's own rollouts-controller (inside a
# copy of its module, whose go.mod pins its k8s.io modules). A failure there does not fail the script:
# it is written to log/argo-harness.failed and the Argo end-to-end tests fail with it; the KServe tests
# still run. Build durations go to log/durations.txt.
#
# Binaries live in a machine-level cache keyed by versions, so a fresh clone (CI) reuses them:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-bot/kube/<versions>/{bin,crds}
# and the repo's .cache/kube is a symlink to it. Go's module and build caches are Go's own.
# Prints the cache directory on its last line. Exits non-zero when the build fails (the tests then
# fail with the log path, they do not skip).
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KSERVE_VERSION=${KSERVE_VERSION:-v0.14.1}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
ARGO_ROLLOUTS_VERSION=${ARGO_ROLLOUTS_VERSION:-v1.8.3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kserve-${KSERVE_VERSION}_argo-${ARGO_ROLLOUTS_VERSION}"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mlops-bot/kube/$KEY
mkdir -p "$CACHE/bin" "$CACHE/crds" "$CACHE/log" "$ROOT/.cache"
ln -sfn "$CACHE" "$ROOT/.cache/kube"
# One build per cache at a time: `make test` starts this in the background while the other tests run,
# and the `kubernetes` tests' fixture (or a second checkout) calling it meanwhile waits here, then
# finds the binaries built.
exec 9>"$CACHE/log/build.lock"
flock -n 9 || { echo "control plane: waiting for the build already running for $CACHE" >&2; flock 9; }
export GOFLAGS="-mod=mod -buildvcs=false ${KUBE_BUILD_GOFLAGS:-}" CGO_ENABLED=0 GOTOOLCHAIN=local
command -v go >/dev/null || { echo "control plane: go is not installed" >&2; exit 1; }

# Throwaway module: `go build` of a main package in a dependency, with the given replaces.
build_main() { # name module version package replaces-file
  local name=$1 module=$2 version=$3 pkg=$4 replaces=$5 ldflags=${6:-}
  [ -x "$CACHE/bin/$name" ] && return 0
  local work; work=$(mktemp -d)
  printf 'module mlopsbot.test/build/%s\n\ngo 1.24\n\nrequire %s %s\n' "$name" "$module" "$version" >"$work/go.mod"
  cat "$replaces" >>"$work/go.mod"
  go_build "$name" "$work" "$pkg" "$ldflags"
}

# `go build PKG` in DIR into bin/NAME, timed: wall and CPU seconds (user + sys, Go's compilers and
# linker included) go to log/durations.txt; exits non-zero on failure.
go_build() { # name dir package ldflags
  local name=$1 work=$2 pkg=$3 ldflags=${4:-} TIMEFORMAT='%R %U %S' took wall user sys
  took=$(mktemp)
  echo "control plane: building $name, log $CACHE/log/$name.log" >&2
  if ! { time { (cd "$work" && nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" -o "$CACHE/bin/$name.tmp" "$pkg") \
      >"$CACHE/log/$name.log" 2>&1; }; } 2>"$took"; then
    echo "control plane: $name build failed:" >&2; tail -20 "$CACHE/log/$name.log" >&2; rm -rf "$work" "$took"; return 1
  fi
  mv "$CACHE/bin/$name.tmp" "$CACHE/bin/$name"
  rm -rf "$work"
  read -r wall user sys <"$took"; rm -f "$took"
  echo "$(date -u +%FT%TZ) $name ${wall%.*}s wall, $(python3 -c "print(round($user + $sys))")s CPU" >>"$CACHE/log/durations.txt"
}

# `go build` of a main package inside a copy of its own module (its go.mod's replaces apply).
build_in_module() { # name module version package [sed script file]
  local name=$1 module=$2 version=$3 pkg=$4 edit=${5:-}
  [ -x "$CACHE/bin/$name" ] && return 0
  local src work; src=$(module_dir "$module" "$version") || return 1
  work=$(mktemp -d); cp -r "$src/." "$work"; chmod -R u+w "$work"
  if [ -n "$edit" ]; then (cd "$work" && bash "$edit") || { rm -rf "$work"; return 1; }; fi
  go_build "$name" "$work" "$pkg"
}

# go.mod of a module through the proxy (no zip): the source of its `replace ./staging/...` list.
module_dir() { (cd "$(mktemp -d)" && go mod download -json "$1@$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'); }
gomod_file() { (cd "$(mktemp -d)" && go mod download -json "$1@$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])'); }

# kube-apiserver: every local `replace k8s.io/x => ./staging/src/k8s.io/x` becomes the published
# k8s.io/x v0.<minor>.<patch>; the other replaces are copied as they are.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
k8s_replaces() {
  python3 - "$1" "$STAGING_VERSION" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
out = []
for block in re.findall(r"^replace\s*\((.*?)^\)", text, re.S | re.M) + re.findall(r"^replace\s+([^(].*)$", text, re.M):
    for line in block.splitlines():
        line = line.split("//")[0].strip()
        if "=>" not in line:
            continue
        left, right = (s.strip() for s in line.split("=>"))
        if right.startswith("./staging/"):
            out.append(f"replace {left.split()[0]} => {left.split()[0]} {sys.argv[2]}")
        elif not right.startswith("."):
            out.append(f"replace {left} => {right}")
print("\n".join(out))
PY
}

VFLAGS="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
k8s_build() { # name: cmd/<name> of k8s.io/kubernetes
  [ -x "$CACHE/bin/$1" ] && return 0
  [ -s "$CACHE/log/k8s-replaces.txt" ] || k8s_replaces "$(gomod_file k8s.io/kubernetes "$K8S_VERSION")" >"$CACHE/log/k8s-replaces.txt"
  build_main "$1" k8s.io/kubernetes "$K8S_VERSION" "k8s.io/kubernetes/cmd/$1" "$CACHE/log/k8s-replaces.txt" "$VFLAGS"
}
k8s_build kube-apiserver || exit 1

# etcd: server/v3's go.mod points its sibling modules at ../api etc.; pin them at the same version.
if [ ! -x "$CACHE/bin/etcd" ]; then
  E=${ETCD_VERSION}
  printf 'replace go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 %s\nreplace go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 %s\nreplace go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 %s\nreplace go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 %s\n' "$E" "$E" "$E" "$E" >"$CACHE/log/etcd-replaces.txt"
  build_main etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$CACHE/log/etcd-replaces.txt" || exit 1
fi

# The engines' real CRDs, out of their Go modules.
if [ ! -s "$CACHE/crds/inferenceservices.yaml" ]; then
  d=$(module_dir github.com/kserve/kserve "$KSERVE_VERSION")
  cat "$d/config/crd/full/serving.kserve.io_inferenceservices.yaml" >"$CACHE/crds/inferenceservices.yaml"
fi
if [ ! -s "$CACHE/crds/argo-rollouts.yaml" ]; then
  d=$(module_dir github.com/argoproj/argo-rollouts "$ARGO_ROLLOUTS_VERSION")
  for f in "$d"/manifests/crds/*-crd.yaml; do echo "---"; cat "$f"; done >"$CACHE/crds/argo-rollouts.tmp"
  mv "$CACHE/crds/argo-rollouts.tmp" "$CACHE/crds/argo-rollouts.yaml"
fi

# The Argo Rollouts harness: what a failure here prevents is only the Argo end-to-end tests.
if [ "${KUBE_BUILD_ARGO_HARNESS:-1}" = 1 ]; then
  rm -f "$CACHE/log/argo-harness.failed"
  failed() { echo "$1 build failed: $(tail -3 "$CACHE/log/$1.log" 2>/dev/null | tr '\n' ' ')(log $CACHE/log/$1.log)"; }
  argo_harness() {
    k8s_build kube-controller-manager || { failed kube-controller-manager; return 1; }
    k8s_build kube-scheduler || { failed kube-scheduler; return 1; }
    if [ "$(cat "$CACHE/bin/kwok.version" 2>/dev/null)" != "$KWOK_VERSION" ]; then
      rm -f "$CACHE/bin/kwok"
      printf '' >"$CACHE/log/kwok-replaces.txt"
      build_main kwok sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok "$CACHE/log/kwok-replaces.txt" \
        || { failed kwok; return 1; }
      echo "$KWOK_VERSION" >"$CACHE/bin/kwok.version"
    fi
    # The one change to Argo's sources: its metrics and healthz servers listen on 127.0.0.1, not
    # 0.0.0.0 (test servers stay on loopback). The sed must hit exactly one line, or the build stops.
    printf '%s\n' 'grep -c "\"0.0.0.0:%d\"" controller/controller.go | grep -qx 1 || { echo "controller.go listenAddr not found" >&2; exit 1; }' \
      'sed -i "s/\"0.0.0.0:%d\"/\"127.0.0.1:%d\"/" controller/controller.go' >"$CACHE/log/argo-loopback.sh"
    build_in_module rollouts-controller github.com/argoproj/argo-rollouts "$ARGO_ROLLOUTS_VERSION" ./cmd/rollouts-controller \
      "$CACHE/log/argo-loopback.sh" || { failed rollouts-controller; return 1; }
  }
  if ! why=$(argo_harness 2>&1 | tail -1; exit "${PIPESTATUS[0]}"); then
    echo "$why" >"$CACHE/log/argo-harness.failed"
    echo "control plane: the Argo Rollouts harness did not build ($why); the Argo e2e tests will fail with it" >&2
  fi
fi
echo "$CACHE"
