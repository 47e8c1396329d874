# The operator image: `mlops-operator run`.
#   docker build -f images/operator.Dockerfile -t mlops-operator/operator:dev .
#   docker build -f images/operator.Dockerfile --build-arg EXTRAS=pipelines \
#       -t mlops-operator/operator:dev-pipelines .
# EXTRAS=pipelines adds what the `local` pipeline backend runs in-process (MLflow, scikit-learn,
# pandas, pyarrow); without it the image is for the `kfp` backend, whose steps run elsewhere.
# Versions: kopf, kfp, kfp-server-api and mlflow-skinny are pinned exactly in pyproject.toml
# (kfp in turn pins kubernetes, requests and urllib3).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/operator
ENV PATH=/opt/operator/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install ".${EXTRAS:+[$EXTRAS]}" \
 && python -m compileall -q -j 0 /opt/operator

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/operator /opt/operator
ENV PATH=/opt/operator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
ENTRYPOINT ["mlops-operator"]
CMD ["run"]
