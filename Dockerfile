# One image for every sharebus Python service; docker-compose.yml picks the module to run.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY services ./services
COPY schemas ./schemas
RUN pip install --no-cache-dir -c constraints.txt .
ENV SHAREBUS_CATALOGUE_DIR=/app/schemas
