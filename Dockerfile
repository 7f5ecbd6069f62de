# The static toolbox daemon alone in a scratch image, to be copied into any sandbox image:
#
#   docker build -t daytona-daemon .
#   # in a sandbox image's Dockerfile:
#   COPY --from=daytona-daemon /daytona-daemon /usr/local/bin/daytona-daemon
#   ENTRYPOINT ["/usr/local/bin/daytona-daemon"]
#   CMD ["sleep", "infinity"]          # the image's own command becomes the entrypoint session
#
# Two ways to get the binary in:
#  - the default (last) target builds it here, in rust:1.95-bookworm, with
#    packaging/build-static.sh, the same script CI runs and tests; it needs a registry;
#  - the `host` target packages the one packaging/build-static.sh wrote on the host (what CI
#    builds, with no registry; packaging/podman/build daemon does this):
#      packaging/build-static.sh && docker build --target host -t daytona-daemon .
FROM scratch AS host
COPY packaging/dist/daytona-daemon /daytona-daemon
ENTRYPOINT ["/daytona-daemon"]

FROM rust:1.95-bookworm AS build
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends musl-tools file \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN packaging/build-static.sh /out

FROM scratch
COPY --from=build /out/daytona-daemon /daytona-daemon
ENTRYPOINT ["/daytona-daemon"]
