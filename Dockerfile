# syntax=docker/dockerfile:1
#
# One image for every ordersaga process. docker-compose.yml and deploy/k8s run each
# agent group as
#   faust -A ordersaga.agents.<group> worker -l info --web-port <port> ...
# and the one-shot `ordersaga topics --create`. Run bare, it prints the CLI help.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/ordersaga \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The uv `make` uses (Makefile's UV_VERSION; tests/unit/test_image.py keeps them equal).
RUN pip install uv==0.13.9

WORKDIR /src
# The dependencies first, exactly as uv.lock pins them: --locked fails the build on a
# lock that no longer matches pyproject.toml, --no-dev leaves the test tools out. A layer
# of its own, rebuilt only when the lock changes. tests/unit/test_image.py runs these
# same steps and checks that they install the lock's versions and nothing else.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
# Then ordersaga itself, with nothing more resolved.
COPY ordersaga ./ordersaga
RUN uv sync --locked --no-dev --no-editable

# -------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="ordersaga" \
      org.opencontainers.image.description="An order-fulfilment saga as Faust stream processors on Kafka" \
      org.opencontainers.image.licenses="MIT"

# tini as PID 1: signals reach the worker as sent and exited children are reaped.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 ordersaga \
    && mkdir -p /var/lib/ordersaga \
    && chown ordersaga:ordersaga /var/lib/ordersaga

COPY --from=build /opt/ordersaga /opt/ordersaga

ENV PATH=/opt/ordersaga/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORDERSAGA_DATA_DIR=/var/lib/ordersaga
# Workers run from a writable directory outside the source tree, so Faust's table data
# and `faust -A` (which also looks in the working directory) use the installed package.
WORKDIR /var/lib/ordersaga
USER 10001

# Live: the worker's web server answers /live (the process works; its dependencies
# are /ready's business). The one-shot commands exit long before the first check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-m", "ordersaga.ops.live"]
ENTRYPOINT ["tini", "--"]
CMD ["ordersaga", "--help"]
