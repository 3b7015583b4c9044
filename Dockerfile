# syntax=docker/dockerfile:1
#
# Gatehouse container image.
#
#   docker build -t gatehouse:0.1.0 .
#   docker run --rm -p 8080:8080 gatehouse:0.1.0      # SQLite in /var/lib/gatehouse, mail to the log
#
# Tag the image with the package version (Cargo.toml), which is the Helm
# chart's appVersion and so its default image tag; scripts/check-deploy.sh
# checks that the three agree.
#
# The runtime image is distroless (no shell, no package manager) and runs as
# the non-root user 65532. It works with a read-only root filesystem: the only
# paths the server writes are /var/lib/gatehouse (SQLite, file mail) and /tmp,
# which Kubernetes provides as emptyDir volumes (see helm/gatehouse).

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src

# 1. Dependencies only. This layer is rebuilt only when a manifest or the lock
#    file changes: the workspace members get empty stand-in sources so that
#    `cargo build` compiles (and caches) every dependency.
COPY Cargo.toml Cargo.lock ./
COPY migration/Cargo.toml migration/Cargo.toml
RUN mkdir -p src migration/src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs migration/src/lib.rs \
    && echo 'fn main() {}' > benches/hot_paths.rs \
    && cargo build --release --locked \
    && rm -rf src migration/src benches

# 2. The real sources. COPY keeps the files' own timestamps, which may be older
#    than the stand-ins built above; touch them so cargo rebuilds our crates.
COPY src src
COPY migration migration
COPY benches benches
RUN touch src/main.rs src/lib.rs migration/src/lib.rs \
    && cargo build --release --locked --bin gatehouse \
    && install -D -m 0755 target/release/gatehouse /out/usr/local/bin/gatehouse \
    && install -d -m 0755 /out/var/lib/gatehouse

# ---------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}

LABEL org.opencontainers.image.title="gatehouse" \
      org.opencontainers.image.description="A standalone OAuth2/OIDC identity provider daemon" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/usr/local/bin/gatehouse /usr/local/bin/gatehouse
COPY config/gatehouse.toml /etc/gatehouse/gatehouse.toml
# Writable by the runtime user when no volume is mounted over it (plain
# `docker run`); in Kubernetes an emptyDir is mounted here.
COPY --from=builder --chown=65532:65532 /out/var/lib/gatehouse /var/lib/gatehouse

# Relative paths in the config (the default SQLite file, file-transport mail)
# resolve here.
WORKDIR /var/lib/gatehouse

# The default config binds 127.0.0.1 (right on a laptop); in a container the
# server must listen on every interface.
ENV GATEHOUSE_SERVER__BIND=0.0.0.0:8080

EXPOSE 8080
# 65532 = "nonroot" in distroless images.
USER 65532:65532

ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve", "--config", "/etc/gatehouse/gatehouse.toml"]
