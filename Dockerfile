# The cachehit GitHub Action image. Ordered so that a source change rebuilds only the last
# compile: dependencies are built in their own layer from Cargo.toml/Cargo.lock alone.
ARG BUILDER_IMAGE=rust:1-bookworm

FROM ${BUILDER_IMAGE} AS builder
# `true` where the builder already holds the crates (no network), as the local builder does.
ARG CARGO_NET_OFFLINE=false
ENV CARGO_NET_OFFLINE=${CARGO_NET_OFFLINE} \
    CARGO_TERM_COLOR=never \
    RUSTFLAGS="-C target-feature=+crt-static"
WORKDIR /src
# Dependencies only: stub sources so `cargo build` compiles every crate but ours.
COPY Cargo.toml Cargo.lock ./
# Declared [[bench]] targets must exist for the manifest to load: stub them too.
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && for bench in $(sed -n '/^\[\[bench\]\]/,/^name/ s/^name *= *"\(.*\)"/\1/p' Cargo.toml); do \
        echo 'fn main() {}' > "benches/$bench.rs"; done \
 && cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && rm -rf src benches target/x86_64-unknown-linux-gnu/release/.fingerprint/cachehit-* \
           target/x86_64-unknown-linux-gnu/release/deps/cachehit-* \
           target/x86_64-unknown-linux-gnu/release/deps/libcachehit-*
# The real sources: only this layer and the next rebuild on a code change.
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --target x86_64-unknown-linux-gnu \
 && cp target/x86_64-unknown-linux-gnu/release/cachehit /cachehit \
 && /cachehit --version

# Release images: no compile, the static binaries built per platform by scripts/release-binaries
# (build context: its OUT_DIR/image folder; `--target prebuilt --platform linux/amd64,linux/arm64`).
FROM scratch AS prebuilt
ARG TARGETARCH
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY ${TARGETARCH}/cachehit /usr/local/bin/cachehit
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/usr/local/bin/cachehit"]
CMD ["action"]

# The default target: the image built from source (development, tests, a branch of the action).
FROM scratch
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /cachehit /usr/local/bin/cachehit
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/usr/local/bin/cachehit"]
CMD ["action"]
