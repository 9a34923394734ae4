# The cdcsync image: the CLI, the sink daemon and the connector definitions.
#   docker build -t cdcsync:0.1.0 .
# compose/docker-compose.yml builds and uses it for `cdcsync connectors apply`
# and `cdcsync sink run`. It runs as an unprivileged user (uid 10001).

FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY cdcsync ./cdcsync
COPY pipeline ./pipeline
COPY debezium ./debezium
COPY sink ./sink
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin cdcsync
USER 10001
# `cdcsync sink run` serves /metrics, /livez and /readyz here (compose's healthcheck probes /readyz).
ENV CDCSYNC_SINK_HTTP=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["cdcsync"]
CMD ["--help"]
