#!/usr/bin/env bash
# Builds (or reuses) the control plane the `kubernetes` tests run against, from source through the Go
# module proxy: kube-apiserver from k8s.io/kubernetes (a throwaway module pins the staging modules with
# `replace`, as k8s.io/kubernetes' own go.mod points them at ./staging, which a module zip does not
# carry) and etcd from go.etcd.io/etcd/server/v3 (Debian's etcd-server is 3.4). It also fetches the
# real CRDs from the engines' Go modules (KServe's InferenceService, Argo Rollouts').
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
ARGO_ROLLOUTS_VERSION=${ARGO_ROLLOUTS_VERSION:-v1.8.3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kserve-${KSERVE_VERSION}_argo-${ARGO_ROLLOUTS_VERSION}"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/mlops-bot/kube/$KEY
mkdir -p "$CACHE/bin" "$CACHE/crds" "$CACHE/log" "$ROOT/.cache"
ln -sfn "$CACHE" "$ROOT/.cache/kube"
export GOFLAGS="-mod=mod -buildvcs=false ${KUBE_BUILD_GOFLAGS:-}" CGO_ENABLED=0 GOTOOLCHAIN=local
command -v go >/dev/null || { echo "control plane: go is not installed" >&2; exit 1; }

# Throwaway module: `go build` of a main package in a dependency, with the given replaces.
build_main() { # name module version package replaces-file
  local name=$1 module=$2 version=$3 pkg=$4 replaces=$5 ldflags=${6:-}
  [ -x "$CACHE/bin/$name" ] && return 0
  local work; work=$(mktemp -d)
  printf 'module mlopsbot.test/build/%s\n\ngo 1.24\n\nrequire %s %s\n' "$name" "$module" "$version" >"$work/go.mod"
  cat "$replaces" >>"$work/go.mod"
  echo "control plane: building $name ($module@$version), log $CACHE/log/$name.log"
  (cd "$work" && nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" -o "$CACHE/bin/$name.tmp" "$pkg") \
    >"$CACHE/log/$name.log" 2>&1 || { echo "control plane: $name build failed:" >&2; tail -20 "$CACHE/log/$name.log" >&2; rm -rf "$work"; exit 1; }
  mv "$CACHE/bin/$name.tmp" "$CACHE/bin/$name"
  rm -rf "$work"
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

if [ ! -x "$CACHE/bin/kube-apiserver" ] || [ ! -x "$CACHE/bin/kube-controller-manager" ]; then
  k8s_replaces "$(gomod_file k8s.io/kubernetes "$K8S_VERSION")" >"$CACHE/log/k8s-replaces.txt"
  VFLAGS="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
  build_main kube-apiserver k8s.io/kubernetes "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-apiserver "$CACHE/log/k8s-replaces.txt" "$VFLAGS"
  if [ "${KUBE_BUILD_CONTROLLER_MANAGER:-0}" = 1 ]; then
    build_main kube-controller-manager k8s.io/kubernetes "$K8S_VERSION" k8s.io/kubernetes/cmd/kube-controller-manager "$CACHE/log/k8s-replaces.txt" "$VFLAGS"
  fi
fi

# etcd: server/v3's go.mod points its sibling modules at ../api etc.; pin them at the same version.
if [ ! -x "$CACHE/bin/etcd" ]; then
  E=${ETCD_VERSION}
  printf 'replace go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 %s\nreplace go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 %s\nreplace go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 %s\nreplace go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 %s\n' "$E" "$E" "$E" "$E" >"$CACHE/log/etcd-replaces.txt"
  build_main etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$CACHE/log/etcd-replaces.txt"
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
echo "$CACHE"
