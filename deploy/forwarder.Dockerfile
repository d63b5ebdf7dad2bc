# syntax=docker/dockerfile:1
#
# The forwarder image: one static (musl) binary on `scratch`, running as uid 65532, no shell.
# Build from the repository root:
#
#   docker build -f deploy/forwarder.Dockerfile -t nlb-port-pool/forwarder:0.1.0 .
#
# Behind a registry mirror, point the build stage at it:
#
#   docker build -f deploy/forwarder.Dockerfile \
#     --build-arg RUST_IMAGE=registry.example.com/library/rust:1-bookworm -t ... .
#
# The binary is built for the platform the build stage runs on (amd64 or arm64; use
# `docker buildx build --platform linux/arm64` for Graviton nodes).

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm

FROM ${RUST_IMAGE} AS build
# musl-tools: the C parts (aws-lc) link statically; cmake for aws-lc-sys where it needs it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools cmake ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo needs every member's manifest; the .dockerignore next to this
# file keeps target/ and local state out of the context.
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --release --locked -p forwarder --target "$target" \
 && install -m 0555 "target/$target/release/forwarder" /forwarder

FROM scratch
# Roots for TLS to AWS endpoints; the API server's CA comes from the ServiceAccount volume.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /forwarder /forwarder
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/forwarder"]
