# Multi-stage: build the binary and install the model, then a slim runtime image.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip unzip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN models/install.sh && cargo build --release --locked -p concord

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/concord concord \
    && mkdir -p /var/lib/concord && chown concord /var/lib/concord
WORKDIR /opt/concord
COPY --from=build /src/target/release/concord /usr/local/bin/concord
COPY --from=build /src/models/use-m-v3 models/use-m-v3
COPY --from=build /src/models/onnxruntime models/onnxruntime
USER concord
EXPOSE 8080
ENTRYPOINT ["concord", "serve"]
