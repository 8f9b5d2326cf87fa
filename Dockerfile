# syntax=docker/dockerfile:1
# rollbot's image: the app on python:3.11-slim as a non-root user, plus a pinned
# helm for the Helm strategy. helm is built from its Go module in a golang stage
# because the Go module proxy is the one place the build fetches helm from.
#
#   docker build -t rollbot:0.1.0 .

ARG HELM_VERSION=v3.19.5
# The Kubernetes minor helm's go.mod builds against; helm's default for `helm template`.
ARG HELM_K8S_MINOR=34

FROM golang:1.24-bookworm AS helm
ARG HELM_VERSION
ARG HELM_K8S_MINOR
ENV CGO_ENABLED=0 GOBIN=/out
RUN go install -trimpath -ldflags "-s -w \
      -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
      -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR} \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${HELM_K8S_MINOR}" \
      "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" \
 && /out/helm version --short | grep -q "^${HELM_VERSION}"

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/rollbot
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY templates ./templates
# The wheel carries the report templates as data files (share/rollbot/templates).
RUN /opt/rollbot/bin/pip install . \
 && /opt/rollbot/bin/python -c 'from bot.reports import TemplateRenderer as T; assert T.builtin_names()'

FROM python:3.11-slim
RUN groupadd --system --gid 10001 rollbot \
 && useradd --system --uid 10001 --gid rollbot --home-dir /tmp --no-create-home rollbot
COPY --from=helm /out/helm /usr/local/bin/helm
COPY --from=build /opt/rollbot /opt/rollbot
ENV PATH=/opt/rollbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
# Numeric, so Kubernetes can check runAsNonRoot against the image.
USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["rollbot"]
CMD ["serve", "--port=3000"]
