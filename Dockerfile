# syntax=docker/dockerfile:1
#
# workload-scheduler: a small, non-root image that runs with a read-only root filesystem.
#
#   docker build -t workload-scheduler:0.1.0 .
#   docker run --rm workload-scheduler:0.1.0 --help
#
# Stage 1 installs the package and its dependencies (all published as wheels) into a venv;
# stage 2 is python:3.11-slim plus that venv and the LICENSE file, nothing else: no pip cache,
# no sources, no compilers. Bytecode is compiled at build time, so nothing is written to
# site-packages at run time.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# LICENSE too: pyproject's license-files puts it into the wheel's metadata.
COPY pyproject.toml README.md LICENSE ./
COPY scheduler ./scheduler
# A regular (not editable) install: the final image needs only /opt/venv. The bytecode is
# compiled here with hash-based invalidation, so it stays valid whatever mtimes the copy
# gives the files and Python never tries to write .pyc files at run time.
RUN /opt/venv/bin/pip install --no-cache-dir --no-compile . \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv/lib

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="workload-scheduler" \
      org.opencontainers.image.description="A workload-aware (gang) secondary scheduler for Kubernetes, in Python." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"
# The user distroless images use (65532), so runAsNonRoot can check a numeric uid.
RUN groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin nonroot
COPY --from=builder /opt/venv /opt/venv
# The Apache License 2.0 text, where Debian-based images keep a package's documents.
COPY LICENSE /usr/share/doc/workload-scheduler/LICENSE
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# 8080: /metrics; 8081: /healthz and /readyz.
EXPOSE 8080 8081
ENTRYPOINT ["workload-scheduler"]
CMD ["run", "--log-format", "json"]
