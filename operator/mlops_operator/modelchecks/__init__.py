"""Measuring a candidate version for spec.promotion.checks: what the pipeline's check step runs.

Training side (the pipeline's image), never the operator: the operator's pure gate
(``gate.judge_report``) compares the report made here with the spec and decides. This module
measures and reports; it judges nothing and never raises for a model that misbehaves. A
measurement that cannot be taken is reported as ``{"error": ...}``, which the gate counts as a
failed check.

The model is loaded through the runtime's own loader (``runtime.model.load``) and every request
goes through the runtime's request path (``codec.parse_invocations`` -> ``LoadedModel.predict``),
so what is *refused* here (``BadRequest``) is a 400 in the pods, and what *crashes* here is a
500 there.

The report (``contract.TAG_CHECKS`` on the version, and ``contract.CHECKS_REPORT_ARTIFACT``
beside the model), each section present when the config names its check::

    {"schema": 1, "rows": 143, "metric": "accuracy", "overall": 0.95,
     "latency": {"batchSize": 1, "requests": 200, "p50Ms": 0.9, "p99Ms": 1.4, "maxMs": 2.0},
     "robustness": {"noise": 0.05, "rows": 143, "changedShare": 0.007,
                    "outOfRange": {"tried": 60, "answered": 58, "refused": 2, "crashed": 0},
                    "missing": {"tried": 30, "answered": 0, "refused": 30, "crashed": 0}},
     "slices": {"minSize": 30, "items": [{"column": "age", "slice": "(30, 60]", "rows": 80,
                                           "value": 0.93, "judged": true}, ...]},
     "fairness": {"column": "group", "groups": 2, "demographicParityDifference": 0.04,
                  "equalizedOddsDifference": 0.06},
     "signature": {"against": "3", "changes": ["input 'age' removed"]}}

Rooms: ``arithmetic`` (pure, table-tested: percentiles, changed shares, slice and fairness
metrics, signature changes), ``probes`` (requests through the runtime's path: timing, far values,
nulls), ``report`` (the report of one version, and writing it to MLflow).
"""

REPORT_SCHEMA = 1
