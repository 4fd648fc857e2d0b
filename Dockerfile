FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py flowerconfig.py ./
COPY orchestrator ./orchestrator
COPY workers ./workers
RUN pip install --no-cache-dir . && useradd --create-home agency \
    && mkdir -p /app/agency-output && chown agency /app/agency-output
USER agency
ENV AGENCY_OUTPUT_DIR=/app/agency-output
