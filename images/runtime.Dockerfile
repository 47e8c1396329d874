# The inference runtime image (ModelDeployment runtime.kind: mlflow): `mlops-runtime` on :8080.
#   docker build -f images/runtime.Dockerfile -t mlops-operator/runtime:dev .
# Slim on purpose: MLflow's client (mlflow-skinny) instead of the full server distribution, and
# none of the operator's own dependencies (kopf, kubernetes, kfp). Versions are the ones the
# tests and bench/bench_runtime.py ran with; models need the libraries they were trained with,
# so a variant for another framework adds it to the second `pip install` (and, if it does not
# use scikit-learn, sets MLOPS_PRELOAD_MODULES= to skip importing skops early).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/runtime
ENV PATH=/opt/runtime/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install --no-deps . \
 && pip install \
      mlflow-skinny==3.17.2 \
      scikit-learn==1.9.1 skops==0.16.0 scipy==1.17.1 cloudpickle==3.1.3 \
      numpy==2.4.6 pandas==3.1.1 \
      uvicorn==0.54.0 uvloop==0.23.0 httptools==0.9.0 orjson==3.13.0 \
      prometheus-client==0.26.0 \
 # bytecode at build time: the container may run with a read-only root filesystem, and
 # compiling MLflow's modules at every start would add seconds to the cold start
 && python -m compileall -q -j 0 /opt/runtime

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/runtime /opt/runtime
# HOME and TMPDIR: MLflow downloads the model and keeps caches there; with a read-only root
# filesystem mount an emptyDir at /tmp.
ENV PATH=/opt/runtime/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    PORT=8080
# a numeric non-root user, as Pod Security "restricted" requires (runAsNonRoot)
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["mlops-runtime"]
