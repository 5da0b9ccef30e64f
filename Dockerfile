# The production image: web (uvicorn, ASGI), worker and beat all run from it.
# See docker-compose.yml for how they are wired and README.md for use.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=marketplace.settings

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. Every pinned
# package ships a manylinux wheel (psycopg[binary], pillow): no compiler.
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --system --create-home --uid 10001 --user-group app

COPY . .

# Static files are collected (hashed and compressed by WhiteNoise) at build
# time. The settings refuse to load without a secret key when DEBUG is off;
# this throwaway key exists only for this step and is not in the image's
# environment at run time.
RUN DJANGO_SECRET_KEY=collectstatic-only-build-key-never-used-at-run-time \
        python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /app/var/media \
    && chown -R app:app /app/var

USER app

EXPOSE 8000

CMD ["uvicorn", "marketplace.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--lifespan", "off", "--ws-max-size", "65536", "--proxy-headers"]
