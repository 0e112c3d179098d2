# chatweb: Daphne serving HTTP and websockets on port 8000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends gettext \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 chatweb

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY . .
RUN SECRET_KEY=build-only-not-a-secret-0123456789abcdef DEBUG=0 \
    python manage.py collectstatic --noinput \
 && SECRET_KEY=build-only-not-a-secret-0123456789abcdef DEBUG=0 \
    python manage.py compilemessages --ignore=bench --ignore=tests \
 && mkdir -p /var/lib/chatweb && chown chatweb:chatweb /var/lib/chatweb

USER chatweb
ENV DATA_DIR=/var/lib/chatweb
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"

# Migrations run once per deploy (`docker compose run --rm migrate`), not per replica.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--websocket_timeout", "-1", "--proxy-headers", "chatweb.asgi:application"]
