# syntax=docker/dockerfile:1
# Protogate's headless gateway as a container image, for a team ("team mode"; README,
# "For a team"). Two stages: Rust builds the binary without the desktop feature, and the
# image holds that binary alone on distroless (glibc, no shell, no package manager),
# running as the non-root user 65532.
#
#   docker build -t protogate .
#   docker run --read-only -p 5711:5711 \
#     -e PROTOGATE_SECRET_PROTOGATE_ACCESS_TOKEN=<token> -e PROTOGATE_SECRET_OPENAI=<key> \
#     -v "$PWD/settings.json:/etc/protogate/settings.json:ro" protogate
#
# Settings: a mounted /etc/protogate/settings.json (a Kubernetes ConfigMap), followed
# while it runs; without one, deploy/container-settings.json (the demo provider, on all
# interfaces, token required). Secrets: only from the environment, PROTOGATE_SECRET_<ID>
# (a Kubernetes Secret); there is no keychain in a container. Writes: only under
# /var/lib/protogate (request log, ChatKit threads), so the root file system can be
# read-only. No HEALTHCHECK: distroless has no shell or curl to run one; Kubernetes probes
# GET /livez and /readyz instead (deploy/kubernetes/deployment.yaml).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Cargo's manifest, lock and config (mimalloc's lazy commit, see .cargo/config.toml)
# first, then the sources: only what the headless binary is built from.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src-tauri src-tauri
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin protogate \
 && cp target/release/protogate /protogate
# The one writable directory, owned by the user the image runs as (no shell later to
# make it).
RUN mkdir -p /out/var/lib/protogate && chown -R 65532:65532 /out/var/lib/protogate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /protogate /protogate
COPY --from=build --chown=65532:65532 /out/var/lib/protogate /var/lib/protogate
COPY deploy/container-settings.json /etc/protogate/settings.json
# The request log and ChatKit threads go to $XDG_DATA_HOME/protogate; nothing else is
# written. A volume, so `docker run --read-only` still has it writable.
ENV XDG_DATA_HOME=/var/lib/protogate \
    PROTOGATE_CONFIG=/etc/protogate/settings.json
VOLUME ["/var/lib/protogate"]
USER 65532:65532
EXPOSE 5711
# https://localhost is for Safari on a designer's machine; in a cluster TLS ends at the
# ingress. The grace period fits Kubernetes' default 30 s termination grace.
ENTRYPOINT ["/protogate", "serve", "--no-https"]
CMD ["--grace-period", "25s"]
