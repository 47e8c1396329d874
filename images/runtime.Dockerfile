# The inference runtime image (ModelDeployment runtime.kind: mlflow): `mlops-runtime` on :8080.
#   docker build -f images/runtime.Dockerfile -t mlops-operator/runtime:dev .
# Slim on purpose: MLflow's client (mlflow-skinny) instead of the full server distribution, and
# none of the operator's own dependencies (kopf, kubernetes, kfp). constraints.txt pins every
# version, the same as in the tests' .venv, so a model trained there predicts identically here;
# models need the libraries they were trained with, so a variant for another framework adds it
# to the dependency layer's `pip install` (and, if it does not use scikit-learn, sets
# MLOPS_PRELOAD_MODULES= to skip importing skops early).
#
# Layers: the dependencies come before the project's code, so a code change rebuilds (and
# ships) only a thin layer: the final image copies the dependencies' venv, then the project's
# own files (installed under /opt/app by the `code` stage) on top of it.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/runtime
ENV PATH=/opt/runtime/bin:$PATH
WORKDIR /src
COPY constraints.txt ./
RUN pip install -c constraints.txt \
      mlflow-skinny \
      scikit-learn skops scipy cloudpickle \
      numpy pandas \
      uvicorn uvloop httptools orjson \
      prometheus-client pydantic-settings \
      aiohttp \
 # bytecode at build time: the container may run with a read-only root filesystem, and
 # compiling MLflow's modules at every start would add seconds to the cold start
 && python -m compileall -q -j 0 /opt/runtime

FROM deps AS code
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install --no-deps --prefix /opt/app . \
 && python -m compileall -q -j 0 /opt/app

FROM ${PYTHON_IMAGE}
COPY --from=deps /opt/runtime /opt/runtime
COPY --from=code /opt/app /opt/runtime
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
