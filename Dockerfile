FROM python:3.11-slim
WORKDIR /app
# The checks (docs/checks.md): pages load in Chromium, generated tests run under bubblewrap.
RUN apt-get update && apt-get install -y --no-install-recommends chromium bubblewrap \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md celeryconfig.py flowerconfig.py ./
COPY orchestrator ./orchestrator
COPY workers ./workers
RUN pip install --no-cache-dir . && useradd --create-home agency \
    && mkdir -p /app/agency-output && chown agency /app/agency-output
USER agency
ENV AGENCY_OUTPUT_DIR=/app/agency-output
# glibc gives each thread that allocates its own malloc arena (up to 8 per core); a threads-pool
# worker then holds memory in many half-empty arenas. Two are enough (docs/scaling.md, "Memory of the topology").
ENV MALLOC_ARENA_MAX=2
