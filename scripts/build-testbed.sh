#!/usr/bin/env bash
# Builds the real Kubernetes test bed (etcd, kube-apiserver,
# kube-controller-manager, kubectl, helm) from the upstream Go modules and
# caches it outside the repo. The only network it needs is the Go module proxy.
#
#   scripts/build-testbed.sh            # prints the folder holding the binaries
#
# Honours KUBEBUILDER_ASSETS: if that folder already holds every binary, it is
# used as is and nothing is built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testbed-versions.env
source "$here/testbed-versions.env"

binaries=(etcd kube-apiserver kube-controller-manager kubectl helm)

have_all() {
  local dir=$1
  for b in "${binaries[@]}"; do [ -x "$dir/$b" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi

cache_root=${ROLLBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollbot}
out="$cache_root/k8s-$K8S_VERSION-helm-$HELM_VERSION"
if have_all "$out"; then echo "$out"; exit 0; fi

mkdir -p "$out" "$cache_root/work"
log() { echo "[build-testbed] $*" >&2; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
staging_tag="v0.$minor.${K8S_VERSION##*.}"

# 1. Kubernetes: a throwaway wrapper module mapping every staging module to its
#    published tag, since k8s.io/kubernetes's go.mod points them at ./staging.
kwrap="$cache_root/work/k8s-$K8S_VERSION"
if ! [ -x "$out/kube-apiserver" ] || ! [ -x "$out/kube-controller-manager" ] || ! [ -x "$out/kubectl" ]; then
  log "building Kubernetes $K8S_VERSION from the Go module proxy (10-25 min the first time, seconds later)"
  mkdir -p "$kwrap"; cd "$kwrap"
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    echo "module rollbot.local/k8swrap"; echo; echo "go 1.24"; echo
    echo "require k8s.io/kubernetes $K8S_VERSION"; echo
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v tag="$staging_tag" '{print "replace " $1 " => " $1 " " tag}'
  } > go.mod
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    if ! [ -x "$out/$cmd" ]; then
      log "go build $cmd"
      go build -trimpath -ldflags "$ldflags" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
      mv "$out/$cmd.tmp" "$out/$cmd"
    fi
  done
fi

# 2. etcd at the version Kubernetes's go.mod requires.
if ! [ -x "$out/etcd" ]; then
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$gomod")
  log "building etcd $etcd_version"
  ewrap="$cache_root/work/etcd-$etcd_version"; mkdir -p "$ewrap"; cd "$ewrap"
  printf 'module rollbot.local/etcdwrap\n\ngo 1.24\n' > go.mod
  go get "go.etcd.io/etcd/server/v3@$etcd_version" >&2
  go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$out/etcd.tmp" "$out/etcd"
fi

# 3. helm: no replace directives, so a plain install works.
if ! [ -x "$out/helm" ]; then
  log "building helm $HELM_VERSION"
  GOBIN="$cache_root/work/helm-bin" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$cache_root/work/helm-bin/helm" "$out/helm"
fi

log "test bed ready in $out"
echo "$out"
