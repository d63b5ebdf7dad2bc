# The forwarder image: one static (musl) binary on `scratch`, running as uid 65532, no shell,
# nothing writable needed (runs with a read-only root filesystem).
#
# From source, with a registry that serves the Rust image (BuildKit, Docker's default builder,
# builds only the stages the last one needs). From the repository root:
#
#   docker build -f deploy/forwarder.Dockerfile -t <registry>/nlb-port-pool-forwarder:<tag> .
#
# Behind a registry mirror, point the build stage at it:
#
#   docker build -f deploy/forwarder.Dockerfile \
#     --build-arg RUST_IMAGE=registry.example.com/library/rust:1-bookworm -t ... .
#
# The binary is built for the platform the build stage runs on (amd64 or arm64; use
# `docker buildx build --platform linux/arm64` for Graviton nodes).
#
# Without any registry (how the test command builds it): the `runtime` stage takes a static
# binary built on the host, and pulls nothing (`scratch` is no image). Its context is a
# directory holding `forwarder` and `ca-certificates.crt`; testbed/bin/forwarder-image makes it:
#
#   DOCKER_BUILDKIT=0 docker build -f deploy/forwarder.Dockerfile --target runtime -t ... DIR
#
# (The runtime stage comes first so that the classic builder, which builds every stage up to
# the target, never reaches the build stage.) Both images have the same layout.

ARG RUST_IMAGE=docker.io/library/rust:1-bookworm

# ---- runtime: a prebuilt static binary and the CA bundle from the build context
FROM scratch AS runtime
# Roots for TLS to AWS endpoints; the API server's CA comes from the ServiceAccount volume.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY forwarder /forwarder
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/forwarder"]

# ---- build: compiles the static binary from the repository
FROM ${RUST_IMAGE} AS build
# musl-tools: a musl C compiler for ring's C and assembly (the TLS crypto of kube and the AWS SDK).
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo needs every member's manifest; the .dockerignore next to this
# file keeps target/ and local state out of the context.
COPY . .
RUN target="$(uname -m)-unknown-linux-musl" \
 && rustup target add "$target" \
 && cargo build --release --locked -p forwarder --target "$target" \
 && install -m 0555 "target/$target/release/forwarder" /forwarder

# ---- image (the default target): the runtime stage's layout, from the build stage
FROM scratch AS image
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /forwarder /forwarder
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/forwarder"]
