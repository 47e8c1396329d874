"""What an API server error means to a reconcile (clients/kube.py): the object is wrong, it
is forbidden, its namespace is going, or the server is busy (worth a retry). PURE."""

from __future__ import annotations

import pytest

from mlops_operator.clients.kube import ApiError, transient

SSA_TYPE = "failed to create typed patch object (ml/x; apps/v1, Kind=Deployment): .spec: bad"
SSA_CONVERT = "failed to convert new object (ml/x; /v1, Kind=Service) to smd typed: quantities"
TERMINATING = "unable to create new content in namespace ml because it is being terminated"


@pytest.mark.parametrize(
    ("error", "invalid", "forbidden", "gone", "retry"),
    [
        (ApiError(422, "Invalid", 'Service "x" is invalid'), True, False, False, False),
        (ApiError(400, "BadRequest", "bad"), True, False, False, False),
        (ApiError(500, "InternalError", SSA_TYPE), True, False, False, False),
        (ApiError(500, "InternalError", SSA_CONVERT), True, False, False, False),
        (ApiError(500, "InternalError", "etcdserver: timed out"), False, False, False, True),
        (ApiError(403, "Forbidden", "quota exceeded"), False, True, False, False),
        (ApiError(403, "Forbidden", TERMINATING), False, False, True, False),
        (ApiError(404, "NotFound", 'namespaces "ml" not found'), False, False, True, False),
        (ApiError(404, "NotFound", 'deployments.apps "x" not found'), False, False, True, False),
        # a kind that is not served is not a namespace going away
        (ApiError(404, "NotFound", "the server could not find the requested resource"),
         False, False, False, True),
        (ApiError(409, "Conflict", "the object has been modified"), False, False, False, True),
        (ApiError(429, "TooManyRequests", "slow down"), False, False, False, True),
        (ApiError(503, "ServiceUnavailable", "x"), False, False, False, True),
    ],
)  # fmt: skip
def test_what_an_api_error_means(
    error: ApiError, invalid: bool, forbidden: bool, gone: bool, retry: bool
) -> None:
    assert (error.invalid, error.forbidden, error.namespace_gone, transient(error)) == (
        invalid,
        forbidden,
        gone,
        retry,
    )


def test_timeouts_and_broken_connections_are_worth_a_retry() -> None:
    import aiohttp

    assert transient(TimeoutError())
    assert transient(aiohttp.ClientConnectionError("reset"))
    assert not transient(ValueError("a bug"))
