# syntax=docker/dockerfile:1
# The Inlet image: `inlet` and its built-in connectors, precompiled so a cold start compiles
# nothing; runs as a non-root user. docs/deploy/cloud-run.md deploys it.
#
#   docker build -t inlet .          # or: gcloud builds submit --tag REGION-docker.pkg.dev/P/R/inlet
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN deploy/stage-image.sh /out

# glibc and libgcc (wasmtime needs them), CA certificates, a `nonroot` user (uid 65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/inlet /usr/local/bin/inlet
COPY --from=build /out/cache /opt/inlet/cache
ENV INLET_CACHE_DIR=/opt/inlet/cache
USER nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["/usr/local/bin/inlet"]
# `inlet serve` for a Cloud Run service; a Cloud Run Job passes `run /etc/inlet/inlet.toml`.
CMD ["serve", "/etc/inlet/inlet.toml"]
