# warroom's worker and web ingress: one image, two commands (`warroom worker`, `warroom web`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 warroom \
    && useradd --system --uid 10001 --gid warroom --create-home --shell /usr/sbin/nologin warroom

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when the pins change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code (owned by root, read-only for the app), installed without touching the dependencies.
COPY README.md worker.py ./
COPY domain/ domain/
COPY workflows/ workflows/
COPY activities/ activities/
COPY starter/ starter/
COPY sandbox/ sandbox/
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info

USER warroom

EXPOSE 3000
# `warroom worker` serves its metrics here (WARROOM_WORKER_METRICS_PORT); the web process on 3000.
EXPOSE 9464
CMD ["warroom", "web"]
