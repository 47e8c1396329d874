"""The MLflow registry webhook receiver: verify.py believes a delivery or not (pure),
receiver.py serves it over HTTPS and hands alias events to the ModelDeployment queue."""
