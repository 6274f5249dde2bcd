# One image for every sharebus Python service; docker-compose.yml picks the module to run.

# The wheel, with the router's per-record modules compiled by mypyc (setup.py): the full image has gcc.
# mypyc type-checks what it compiles against the dependencies and the dev extra's stubs, so they are installed
# first, and the wheel is built without isolation, beside them.
FROM python:3.11 AS wheel
WORKDIR /src
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY services ./services
RUN pip install --no-cache-dir -c constraints.txt ".[dev]" "setuptools>=69" wheel \
    && SHAREBUS_COMPILE=1 pip wheel --no-cache-dir --no-deps --no-build-isolation -w /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY schemas ./schemas
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir -c constraints.txt /wheels/*.whl && rm -rf /wheels
# The data directories of the router and the gateway belong to their uids (sharebus_cli/compose_init.py
# SERVICE_UIDS), so the fresh volumes mounted over them do too.
# The Prometheus config that prometheus-config writes for compose's Prometheus (both run as nobody).
RUN mkdir -p /var/lib/sharebus/router /var/lib/sharebus/disputes /var/lib/sharebus/prometheus /var/lib/sharebus/portal \
    && chown 10002:10002 /var/lib/sharebus/router && chmod 0700 /var/lib/sharebus/router \
    && chown 10004:10004 /var/lib/sharebus/disputes && chmod 0700 /var/lib/sharebus/disputes \
    && chown 10008:10008 /var/lib/sharebus/portal && chmod 0700 /var/lib/sharebus/portal \
    && chown 65534:65534 /var/lib/sharebus/prometheus
ENV SHAREBUS_CATALOGUE_DIR=/app/schemas
# Not root unless a service says so: docker-compose.yml gives each service its own uid, and only the
# init services (which write and chown the secrets) run as root.
USER 65534:65534
