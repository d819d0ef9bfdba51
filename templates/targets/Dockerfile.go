# Dockerfile for the Go target "{{ID}}" (module {{MODULE}}), made from dockpack's
# Dockerfile.go template. Edit freely: dockpack never overwrites this file.
#
# What to change:
# - BUILD_IMAGE: the Go toolchain image; BASE_IMAGE: the runtime (distroless static by default,
#   or e.g. debian:bookworm-slim if you need a shell). Pin both, or pass --build-arg per build.
# - ENTRY: the package to build (`.` or e.g. `./cmd/server`).
# - Distroless has no shell and no curl, so the HEALTHCHECK runs your own binary with
#   `-healthcheck`: add such a flag to your program (probe {{HEALTH_PATH}} on PORT, exit 0/1),
#   or delete the HEALTHCHECK line.
# This template builds only where a Go toolchain image is available to the engine.
ARG BUILD_IMAGE=golang:1.22-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

# ---- build: a static binary ----
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY {{MODULE}}/go.* ./
RUN go mod download
COPY {{MODULE}}/ ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/app {{ENTRY}}

# ---- runtime ----
FROM ${BASE_IMAGE}
COPY --from=build /out/app /app
# Non-root: distroless's nonroot uid.
USER 65532:65532
# >>> service-only (removed for jobs)
ENV PORT={{PORT}}
EXPOSE {{PORT}}
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/app", "-healthcheck"]
# <<< service-only
ENTRYPOINT ["/app"]
