# chatweb: Daphne serving HTTP and websockets on port 8000.
#
# BASE_IMAGE: any Debian-based image with Python 3.11. The default is the public Python
# image; CI builds on a Debian bookworm image made locally with debootstrap (no registry
# there), whose python3 is 3.11 too but comes without venv or pip until installed below.
# PIP_INSTALL_OPTIONS: extra pip arguments, e.g. "--cert FILE" where TLS is intercepted
# (CI mounts the host's CA bundle for the build only: deploy/ci-image-check).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG PIP_INSTALL_OPTIONS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# The app lives in a venv at /opt/venv on both bases: Debian's own python3 refuses pip
# installs into the system (PEP 668), and the venv gives one path for every command.
RUN packages="gettext" \
 && if ! python3 -c "import ensurepip, venv" 2>/dev/null; then packages="$packages python3 python3-venv"; fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends $packages \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && useradd --create-home --uid 1000 chatweb

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install $PIP_INSTALL_OPTIONS -r /tmp/requirements.txt

COPY . .
# Build steps only read files: a throwaway key, and the simulator named so that the
# "no gateway key with DEBUG off" rule does not stop them.
RUN export SECRET_KEY=build-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz \
      DEBUG=0 GATEWAY=simulator OPENAI_API_KEY= \
 && python manage.py collectstatic --noinput \
 && python manage.py compilemessages --ignore=bench --ignore=tests \
 && mkdir -p /var/lib/chatweb && chown chatweb:chatweb /var/lib/chatweb

USER chatweb
ENV DATA_DIR=/var/lib/chatweb \
    SHUTDOWN_GRACE_SECONDS=60
EXPOSE 8000
# The probe sends the Host and X-Forwarded-Proto the settings expect (HTTPS=1 would
# redirect a bare http:// request, ALLOWED_HOSTS may not name 127.0.0.1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "chatweb.healthprobe"]

# On SIGTERM Daphne stops taking new turns, lets running answers finish for up to
# SHUTDOWN_GRACE_SECONDS, then saves what is left as interrupted and exits. Give it
# longer than that before the SIGKILL: compose's stop_grace_period is 75s; with
# `docker run`/`podman run` pass --stop-timeout 75 (the default is 10 s).
STOPSIGNAL SIGTERM

# Migrations run once per deploy (`docker compose run --rm migrate`), not per replica.
# No --proxy-headers: Daphne would believe the first X-Forwarded-For entry, which the
# client writes; the app reads the header itself (TRUSTED_PROXY_COUNT).
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_timeout", "-1", "chatweb.asgi:application"]
