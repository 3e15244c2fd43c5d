# syntax=docker/dockerfile:1
# compose-harden in a container that practises what it preaches: the release binary
# (it needs only glibc and libgcc_s, which distroless/cc provides) on an image with no
# shell and no package manager, running as an unprivileged user (65532, "nonroot")
# that needs no capabilities.
#
#   docker build -t compose-harden .
#   docker run --rm --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges:true \
#     --read-only --network none -v "$PWD:/work:ro" compose-harden check .
#
# or see examples/self/compose.yaml.

FROM rust:1-slim AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/compose-harden /out/compose-harden

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/compose-harden /usr/local/bin/compose-harden
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/compose-harden"]
CMD ["check", "."]
