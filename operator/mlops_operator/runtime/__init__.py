"""The inference runtime: the HTTP server inside ModelDeployment pods (``mlops-runtime``).

Modules, from the wire inward:
    cli       entry point: settings from the environment, background model load, SIGTERM drain
    app       the ASGI application: routing, errors as JSON, request metrics
    codec     request bodies -> typed DataFrames, predictions -> response bodies (pure)
    schema    the model signature as the codec sees it (pure)
    model     loading the MLflow pyfunc model and calling it
    drift     the sliding window of inputs/predictions and its PSI against the baseline
    metrics   the Prometheus registry and the metric names of the contract
    config    RuntimeConfig, read once from environment variables
"""
