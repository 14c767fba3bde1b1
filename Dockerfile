# The event-collector sidecar: the collector and its client, and nothing else.
# Build from the repository root: docker build -t event-collector .
FROM python:3.12-slim

# One fixed uid and gid. The socket is created mode 0660 in a 0750 directory,
# so the app's container only has to join this gid (compose: group_add).
ARG COLLECTOR_UID=10001
ARG COLLECTOR_GID=10001

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EVENT_COLLECTOR_SOCKET=/run/event-collector/events.sock

# A fresh named volume mounted on /run/event-collector copies this directory's
# owner and mode, so the collector can create its socket there and the app's
# group can reach it, with a read-only root filesystem.
RUN groupadd --gid "${COLLECTOR_GID}" event-collector \
    && useradd --uid "${COLLECTOR_UID}" --gid "${COLLECTOR_GID}" --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin event-collector \
    && install -d -o "${COLLECTOR_UID}" -g "${COLLECTOR_GID}" -m 0750 /run/event-collector

# The same install as scripts/setup, without the editable flag and dev tools,
# and the same compile for -OO: the root filesystem is read-only at run time.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY client ./client
COPY collector ./collector
RUN pip install '.[collector]' && rm -rf /src \
    && python -m compileall -o 2 -q -j 0 \
        "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"

# PYTHONOPTIMIZE=2 (python -OO) leaves out docstrings: kubernetes-asyncio's
# generated models, which the collector imports but never uses, then cost 25 MiB
# of RSS instead of 38 MiB. Set after the install, so pip runs as usual.
ENV PYTHONOPTIMIZE=2

WORKDIR /
USER ${COLLECTOR_UID}:${COLLECTOR_GID}
ENTRYPOINT ["python", "-m", "collector"]
