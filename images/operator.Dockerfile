# The operator image: `mlops-operator run`.
#   docker build -f images/operator.Dockerfile -t mlops-operator/operator:dev .
#   docker build -f images/operator.Dockerfile --build-arg EXTRAS=pipelines \
#       -t mlops-operator/operator:dev-pipelines .
# EXTRAS=pipelines adds what the `local` pipeline backend runs in-process (MLflow, scikit-learn,
# pandas, pyarrow); without it the image is for the `kfp` backend, whose steps run elsewhere.
# Versions: constraints.txt pins every one, the same as in the tests' .venv.
#
# Layers: the dependencies (read from pyproject.toml) come before the project's code, so a code
# change rebuilds (and ships) only a thin layer; see runtime.Dockerfile.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/operator
ENV PATH=/opt/operator/bin:$PATH
WORKDIR /src
COPY constraints.txt pyproject.toml ./
RUN python -c 'import os, tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
extras = [e for e in os.environ.get("EXTRAS", "").split(",") if e]; \
print("\n".join(p["dependencies"] + [d for e in extras for d in p["optional-dependencies"][e]]))' \
      > /tmp/requirements.txt \
 && pip install -c constraints.txt -r /tmp/requirements.txt \
 && python -m compileall -q -j 0 /opt/operator

FROM deps AS code
COPY README.md ./
COPY operator/ operator/
RUN pip install --no-deps --prefix /opt/app . \
 && python -m compileall -q -j 0 /opt/app

FROM ${PYTHON_IMAGE}
COPY --from=deps /opt/operator /opt/operator
COPY --from=code /opt/app /opt/operator
ENV PATH=/opt/operator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
ENTRYPOINT ["mlops-operator"]
CMD ["run"]
