#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller from the upstream Go
# modules and copies their CRDs beside them, with Argo CD's Application CRD
# (Argo CD's own controller is not built: its gitops-engine does not resolve
# from the proxy), into a cache folder outside the repo. The only network it
# needs is the Go module proxy.
#
#   scripts/build-flux.sh      # prints the folder: the two binaries, crds/flux, crds/argocd
#
# Honours FLUX_ASSETS: if that folder already holds all of it, it is used as is
# and nothing is built. helm-controller is left out: the proxy does not serve it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testbed-versions.env
source "$here/testbed-versions.env"

sc_version=$FLUX_SOURCE_CONTROLLER_VERSION
kc_version=$FLUX_KUSTOMIZE_CONTROLLER_VERSION
binaries=(source-controller kustomize-controller)

have_all() {
  local dir=$1
  for b in "${binaries[@]}"; do [ -x "$dir/$b" ] || return 1; done
  [ -f "$dir/crds/flux/kustomize.toolkit.fluxcd.io_kustomizations.yaml" ] &&
    [ -f "$dir/crds/argocd/application-crd.yaml" ]
}

if [ -n "${FLUX_ASSETS:-}" ] && have_all "$FLUX_ASSETS"; then
  echo "$FLUX_ASSETS"; exit 0
fi

cache_root=${ROLLBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollbot}
out="$cache_root/flux-source-$sc_version-kustomize-$kc_version-argocd-$ARGOCD_VERSION"
if have_all "$out"; then echo "$out"; exit 0; fi

log() { echo "[build-flux] $*" >&2; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$out" "$cache_root/work"
tmp="$out/.build"; rm -rf "$tmp"; mkdir -p "$tmp/crds/flux" "$tmp/crds/argocd"

# The module's folder in the module cache (downloading it if needed).
module_dir() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# Each controller's go.mod replaces its own ./api with the checkout's folder and
# pins a few modules elsewhere; `go install mod@version` refuses a module with
# replace lines, so a throwaway wrapper module requires it and carries the
# replaces over, local paths dropped (the published .../api module is used), and
# adds FLUX_SUBSTITUTES: modules the proxy here serves only at other versions.
build_controller() {  # name version
  local name=$1 version=$2 module=github.com/fluxcd/$1
  local gomod
  gomod=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local wrap="$cache_root/work/$name-$version"
  mkdir -p "$wrap"; cd "$wrap"
  {
    echo "module rollbot.local/${name//-/}wrap"; echo; echo "go 1.26"; echo
    echo "require $module $version"; echo
    python3 - "$gomod" <<'PY'
import re, sys

text = open(sys.argv[1]).read()
lines = []
for block in re.findall(r"^replace \(\n(.*?)^\)", text, re.M | re.S):
    lines += [line.strip() for line in block.splitlines()]
lines += [line.strip() for line in re.findall(r"^replace ([^(\n].*)$", text, re.M)]
for line in lines:
    if not line or line.startswith("//"):
        continue
    target = line.split("=>", 1)[1].strip()
    if target.startswith(("./", "../", "/")):
        continue  # a folder of the upstream checkout, not a module version
    print("replace", line)
PY
    for sub in $FLUX_SUBSTITUTES; do echo "replace ${sub%@*} => ${sub%@*} ${sub#*@}"; done
  } > go.mod
  go get "$module@$version" >&2
  log "go build $name $version"
  go build -trimpath -ldflags "-s -w" -o "$tmp/$name" "$module"
  cp "$(module_dir "$module@$version")"/config/crd/bases/*.yaml "$tmp/crds/flux/"
}

log "building Flux source-controller $sc_version and kustomize-controller $kc_version" \
  "from the Go module proxy (10-20 min the first time, seconds later)"
build_controller source-controller "$sc_version"
build_controller kustomize-controller "$kc_version"

# Argo CD: its Application CRD only (the API; no controller runs).
log "Argo CD $ARGOCD_VERSION: the Application CRD"
cd "$cache_root/work"
cp "$(module_dir "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION")/manifests/crds/application-crd.yaml" \
  "$tmp/crds/argocd/"

chmod u+w "$tmp"/crds/*/*.yaml
rm -rf "$out/crds"; mv "$tmp/crds" "$out/crds"
for b in "${binaries[@]}"; do mv "$tmp/$b" "$out/$b"; done
rmdir "$tmp"

log "Flux ready in $out"
echo "$out"
