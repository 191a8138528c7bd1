# syntax=docker/dockerfile:1
#
# One image for every ordersaga process. docker-compose.yml runs each agent group as
#   faust -A ordersaga.agents.<group> worker -l info --web-port <port> ...
# and the one-shot `ordersaga topics --create`. Run bare, it prints the CLI help.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# The dependencies first, exactly as uv.lock pins them (deploy/requirements.lock is
# `uv export` of the lock, hashes included; `make` refuses a stale one): the image
# runs what the tests ran. A layer of its own, rebuilt only when the lock changes.
COPY deploy/requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# Then ordersaga itself, with nothing more resolved. Only what the build needs (there
# is no .dockerignore, so no `COPY .`: it would drag in .git, .venv and worker
# state). `README.m[d]` is a glob so the build does not fail while README.md (named
# by pyproject.toml) does not exist yet.
COPY pyproject.toml README.m[d] ./
COPY ordersaga ./ordersaga

RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 ordersaga \
    && mkdir -p /var/lib/ordersaga \
    && chown ordersaga:ordersaga /var/lib/ordersaga

# Workers run from a writable directory outside the source tree, so Faust's table data
# and `faust -A` (which also looks in the working directory) use the installed package.
WORKDIR /var/lib/ordersaga
ENV ORDERSAGA_DATA_DIR=/var/lib/ordersaga
USER ordersaga

CMD ["ordersaga", "--help"]
