# syntax=docker/dockerfile:1
#
# The `secflow` binary in a slim Debian image.
#
#   docker build -t secflow:0.1.0 .
#   docker run --rm secflow:0.1.0 validate /etc/secflow/topologies/production.yaml
#
# The builder and the runtime are the same Debian release (bookworm), so the binary links against
# the glibc, OpenSSL and libstdc++ the runtime has. librdkafka, RocksDB and jemalloc (the
# process's malloc) are compiled from source by their -sys crates (no system packages for them at
# run time); the RocksDB C++ build is the slow part (see docs/ci.md): the cache mounts keep it
# between builds.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# Build dependencies: the same list as scripts/bootstrap.sh. librdkafka is built with its own
# ./configure + make (zlib from the system); RocksDB with the C++ toolchain; bindgen needs libclang;
# reqwest's native-tls needs OpenSSL headers.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config cmake clang libclang-dev \
      libssl-dev zlib1g-dev libzstd-dev liblz4-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace (every member manifest is needed to resolve the lockfile); .dockerignore
# keeps build output, local tools and the git history out of the context.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p pipeline --bin secflow \
 && install -D -m 0755 target/release/secflow /out/secflow

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Run-time libraries of the binary (what `ldd secflow` lists besides glibc), CA certificates for
# TLS to sinks, TAXII servers and registries, and curl for the container healthcheck.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libssl3 zlib1g libstdc++6 curl \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid, so volume ownership and Kubernetes `runAsUser` can name it.
RUN groupadd --system --gid 10001 secflow \
 && useradd --system --uid 10001 --gid secflow --home-dir /var/lib/secflow \
      --shell /usr/sbin/nologin secflow \
 && install -d -o secflow -g secflow -m 0750 /var/lib/secflow \
 && install -d -m 0755 /etc/secflow/topologies
COPY --from=builder /out/secflow /usr/local/bin/secflow
COPY topologies/ /etc/secflow/topologies/
# State (the enricher's RocksDB indicator table, alert sinks' state files): a volume per instance.
VOLUME ["/var/lib/secflow"]
ENV SECFLOW_STATE_DIR=/var/lib/secflow \
    SECFLOW_LOG_FORMAT=json
USER secflow:secflow
WORKDIR /var/lib/secflow
# Metrics, /healthz and /readyz (SECFLOW_METRICS_ADDR, default 0.0.0.0:9464).
EXPOSE 9464
ENTRYPOINT ["secflow"]
CMD ["--help"]
