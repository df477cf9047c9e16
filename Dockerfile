# ratelimit-server image.
#
#   docker build -t ratelimit .
#   docker run --rm -p 127.0.0.1:50051:50051 -p 127.0.0.1:9464:9464 ratelimit
#
# The build stage uses the same scripts as the README and CI; the runtime stage
# carries only the shared libraries the two binaries load.

# --- build ------------------------------------------------------------------
FROM debian:bookworm AS build

ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY . .
# A build directory from the host (excluded by .dockerignore, removed here in
# case the image is built without it) would hold a CMake cache for other paths.
RUN rm -rf build .local-stack \
 && bash scripts/install-deps \
 && bash scripts/build \
 && install -D -m 0755 -s build/ratelimit-server /out/ratelimit-server \
 && install -D -m 0755 -s build/client/ratelimit-cli /out/ratelimit-cli

# --- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

ENV DEBIAN_FRONTEND=noninteractive
# Runtime libraries of: gRPC C++ 1.51, protobuf 3.21, hiredis 0.14, libevent
# 2.1 with pthreads, spdlog 1.10 with fmt 9, abseil 20220623, prometheus-cpp
# 1.0 core and pull, civetweb.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libgrpc++1.51 \
      libgrpc29 \
      libprotobuf32 \
      libhiredis0.14 \
      libevent-2.1-7 \
      libevent-pthreads-2.1-7 \
      libspdlog1.10 \
      libfmt9 \
      libabsl20220623 \
      libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 \
      libcivetweb1 \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /out/ratelimit-server /out/ratelimit-cli /usr/local/bin/

# Fail the image build, not the first start, if a shared library is missing.
RUN if ldd /usr/local/bin/ratelimit-server /usr/local/bin/ratelimit-cli | grep 'not found'; then \
      echo 'runtime stage lacks the shared libraries listed above' >&2; exit 1; \
    fi

RUN groupadd --system --gid 10001 ratelimit \
 && useradd --system --uid 10001 --gid ratelimit --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin ratelimit
USER 10001:10001

# Inside a container the service must listen on every interface of the
# container; publish the ports on the host's loopback unless you mean otherwise.
ENV RATELIMIT_GRPC_ADDRESS=0.0.0.0:50051 \
    RATELIMIT_ADMIN_ADDRESS=0.0.0.0:9464
EXPOSE 50051 9464

# "ratelimit-cli health" asks the service's GetHealth over gRPC and exits 0
# while it serves, also while degraded (answering from memory because Redis is
# away: a restart would not bring Redis back), 1 once shutdown has begun and 2
# when the call fails. Docker reserves exit status 2, hence "|| exit 1". The
# call's --deadline stays below the check's --timeout.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ratelimit-cli health --target=127.0.0.1:50051 --deadline=2s || exit 1

ENTRYPOINT ["ratelimit-server"]
