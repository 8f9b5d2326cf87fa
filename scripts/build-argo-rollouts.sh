#!/usr/bin/env bash
# Builds the real Argo Rollouts controller (`rollouts-controller`) and its
# kubectl plugin (`kubectl-argo-rollouts`) from the upstream Go module, and
# copies the module's CRDs beside them, into a cache folder outside the repo.
# The only network it needs is the Go module proxy.
#
#   scripts/build-argo-rollouts.sh      # prints the folder: the two binaries and crds/
#
# Honours ARGO_ROLLOUTS_ASSETS: if that folder already holds both binaries and
# crds/, it is used as is and nothing is built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=testbed-versions.env
source "$here/testbed-versions.env"

module=github.com/argoproj/argo-rollouts
version=$ARGO_ROLLOUTS_VERSION
binaries=(rollouts-controller kubectl-argo-rollouts)

have_all() {
  local dir=$1
  for b in "${binaries[@]}"; do [ -x "$dir/$b" ] || return 1; done
  [ -f "$dir/crds/rollout-crd.yaml" ]
}

if [ -n "${ARGO_ROLLOUTS_ASSETS:-}" ] && have_all "$ARGO_ROLLOUTS_ASSETS"; then
  echo "$ARGO_ROLLOUTS_ASSETS"; exit 0
fi

cache_root=${ROLLBOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rollbot}
out="$cache_root/argo-rollouts-$version"
if have_all "$out"; then echo "$out"; exit 0; fi

log() { echo "[build-argo-rollouts] $*" >&2; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
mkdir -p "$out" "$cache_root/work"
log "building Argo Rollouts $version from the Go module proxy (10-20 min the first time, seconds later)"

# The module's go.mod replaces k8s.io/* (and two others) with other versions; a
# `go install mod@version` refuses a module with replace lines, so a throwaway
# wrapper module requires it and carries its replaces over (local paths dropped).
cd "$cache_root/work"  # outside any module, wherever the caller stands
info=$(go mod download -json "$module@$version")
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$info" "$1"; }
gomod=$(field GoMod); moddir=$(field Dir)
released=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Time"])' "$(field Info)")

wrap="$cache_root/work/argo-rollouts-$version"
mkdir -p "$wrap"; cd "$wrap"
{
  echo "module rollbot.local/argorolloutswrap"; echo; echo "go 1.26"; echo
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
} > go.mod
go get "$module@$version" >&2

# `version` reports v<version>+unknown (the proxy does not say which commit the tag
# is); the build date is the tag's, from the proxy, so a rebuild is the same binary.
pkg=$module/utils/version
ldflags="-s -w -X $pkg.version=${version#v} -X $pkg.gitTag=$version -X $pkg.buildDate=$released"
tmp="$out/.build"; rm -rf "$tmp"; mkdir -p "$tmp"
log "go build ${binaries[*]}"
go build -trimpath -ldflags "$ldflags" -o "$tmp/" "$module/cmd/rollouts-controller" "$module/cmd/kubectl-argo-rollouts"

# The CRDs of the same module, so the API the tests create matches the controller.
mkdir -p "$tmp/crds"
cp "$moddir"/manifests/crds/*-crd.yaml "$tmp/crds/"
chmod u+w "$tmp"/crds/*.yaml
rm -rf "$out/crds"; mv "$tmp/crds" "$out/crds"
for b in "${binaries[@]}"; do mv "$tmp/$b" "$out/$b"; done
rmdir "$tmp"

log "Argo Rollouts $version ready in $out"
echo "$out"
