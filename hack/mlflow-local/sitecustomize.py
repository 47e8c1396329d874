"""Local settings of the tests' and the demo's MLflow server: on its PYTHONPATH only.

MLflow delivers webhooks through a requests session that ignores REQUESTS_CA_BUNDLE
(`trust_env = False`, against proxies) and so trusts only certifi's public CAs. The operator's
receiver on this machine has a certificate from the local cluster's CA instead; when
MLOPS_LOCAL_WEBHOOK_CA is set, this makes requests in the MLflow server's processes trust
that CA file (and nothing else: the local MLflow sends nothing off this machine). A production
MLflow would reach the receiver through a publicly trusted certificate, or have the issuer
added to its image's certifi bundle; see docs/webhooks.md.
"""

import os

_ca = os.environ.get("MLOPS_LOCAL_WEBHOOK_CA")
if _ca:
    import requests.adapters

    requests.adapters.DEFAULT_CA_BUNDLE_PATH = _ca
