FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.8
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev
COPY . .
RUN DEBUG=1 DATABASE_URL=postgresql://unused@localhost/unused REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput
USER nobody
