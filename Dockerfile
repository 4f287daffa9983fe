# The Driftloop image the Helm chart names (ghcr.io/driftloop/driftloop:<appVersion>): one image
# for the monitor, the sidecar and the migrations; the chart passes the subcommand as args.
#
#   docker build -t ghcr.io/driftloop/driftloop:0.1.0 .
#
# Slim Python base, a virtualenv copied into a clean final stage, non-root user 65532 and nothing
# written at run time (modules are compiled at build time), so the chart's
# readOnlyRootFilesystem holds; HOME and temporary files go to the /tmp emptyDir it mounts.
# tests/test_image.py runs the same install steps (docker/install.sh) in a fresh virtualenv.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY driftloop ./driftloop
COPY serving ./serving
COPY monitor ./monitor
COPY feedback ./feedback
COPY dashboards ./dashboards
COPY docker/install.sh ./docker/install.sh
RUN sh docker/install.sh /opt/driftloop

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="driftloop" \
      org.opencontainers.image.description="Driftloop monitor, sidecar and migrations" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/driftloop /opt/driftloop
ENV PATH=/opt/driftloop/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["driftloop"]
CMD ["--help"]
