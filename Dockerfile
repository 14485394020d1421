# The code location as a gRPC server: `dagster api grpc` on port 4000.
FROM python:3.11-slim
WORKDIR /opt/hub
COPY pyproject.toml README.md ./
COPY assets assets
COPY dagster_project dagster_project
COPY pipelines pipelines
COPY quality quality
COPY resources resources
COPY simulators simulators
RUN pip install --no-cache-dir .
EXPOSE 4000
CMD ["dagster", "api", "grpc", "--module-name", "dagster_project.definitions", "--host", "0.0.0.0", "--port", "4000"]
