"""Open Inference Protocol v2 (KServe's /v2/models/<name>/infer): requests in, responses out.

The same column checks and dtypes as the MLflow scoring JSON (codec.py) apply, so a model
answers both protocols alike. Pure: numpy, pandas, orjson; no MLflow.
"""

from __future__ import annotations

import math
import uuid
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from mlops_operator.runtime.codec import (
    BadRequest,
    Parsed,
    check_columns,
    decode_json,
    encode_json,
    jsonable_array,
    rows_to_frame,
    typed_frame,
)
from mlops_operator.runtime.schema import ColumnSchema, ColumnType, oip_datatype_of

# OIP datatypes a column of each type accepts (numbers widen to double/float, not narrow).
_OIP_ACCEPTS: dict[ColumnType, frozenset[str]] = {
    ColumnType.DOUBLE: frozenset(
        {"FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"}
    ),
    ColumnType.FLOAT: frozenset({"FP64", "FP32", "FP16", "INT8", "INT16", "UINT8", "UINT16"}),
    ColumnType.LONG: frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"}),
    ColumnType.INTEGER: frozenset({"INT8", "INT16", "INT32", "UINT8", "UINT16"}),
    ColumnType.BOOLEAN: frozenset({"BOOL"}),
    ColumnType.STRING: frozenset({"BYTES"}),
}
_OIP_NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


def parse_oip(body: bytes, schema: ColumnSchema | None) -> tuple[Parsed, str | None]:
    """Parse an OIP v2 inference request; returns the parsed input and the request id.

    With a column schema the inputs are either one tensor per column (named like the column,
    shape ``[n]`` or ``[n, 1]``) or a single ``[n, k]`` tensor with the columns in signature
    order. Otherwise ``frame`` is None and ``payload['inputs']`` maps names to numpy arrays.
    """
    req = decode_json(body)
    if not isinstance(req, dict):
        raise BadRequest("expected a JSON object with 'inputs'")
    rid = req.get("id")
    if rid is not None and not isinstance(rid, str):
        raise BadRequest("'id' must be a string")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("'inputs' must be a non-empty list of tensors")
    tensors = [_tensor(t, i) for i, t in enumerate(inputs)]
    params = req.get("parameters")
    params = params if isinstance(params, dict) else None
    if schema is None:
        arrays = {name: _tensor_array(name, dt, shape, data) for name, shape, dt, data in tensors}
        return Parsed(None, {"inputs": arrays}, params), rid

    names = [t[0] for t in tensors]
    if all(n in schema.by_name for n in names):
        values: dict[str, list[Any]] = {}
        n_rows: int | None = None
        for name, shape, datatype, data in tensors:
            col = schema.by_name[name]
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise BadRequest(f"input {name!r}: shape {shape} is not [n] or [n, 1]")
            if n_rows is not None and shape[0] != n_rows:
                raise BadRequest(f"input {name!r}: {shape[0]} rows, other inputs have {n_rows}")
            n_rows = shape[0]
            _check_oip_datatype(name, datatype, col.type)
            values[name] = data
        check_columns(names, schema)
        return Parsed(typed_frame(values, schema, n_rows or 0, "inputs"), req, params), rid

    if len(tensors) == 1 and len(tensors[0][1]) == 2 and tensors[0][1][1] == len(schema.columns):
        name, (n_rows, k), datatype, data = tensors[0]
        for col in schema.columns:
            _check_oip_datatype(name, datatype, col.type)
        rows = [data[i * k : (i + 1) * k] for i in range(n_rows)]
        frame = rows_to_frame(schema.names, rows, schema, "inputs")
        return Parsed(frame, req, params), rid

    unknown = [n for n in names if n not in schema.by_name]
    raise BadRequest(
        f"unknown input(s) {unknown}: send one tensor per column named {schema.names}, "
        f"or one [n, {len(schema.columns)}] tensor with the columns in that order"
    )


def _tensor(t: Any, i: int) -> tuple[str, list[int], str, list[Any]]:
    if not isinstance(t, dict):
        raise BadRequest(f"inputs[{i}] must be an object with name, shape, datatype, data")
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in t]
    if missing:
        raise BadRequest(f"inputs[{i}] is missing {missing}")
    name, shape, datatype, data = t["name"], t["shape"], t["datatype"], t["data"]
    if not isinstance(name, str):
        raise BadRequest(f"inputs[{i}].name must be a string")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise BadRequest(f"input {name!r}: shape must be a list of non-negative integers")
    if datatype not in _OIP_NUMPY:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}")
    if not isinstance(data, list):
        data = [data]
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise BadRequest(
            f"input {name!r}: shape {shape} needs {math.prod(shape)} values, got {len(flat)}"
        )
    return name, shape, datatype, flat


def _flatten(data: list[Any]) -> list[Any]:
    while data and isinstance(data[0], list):
        if not all(isinstance(d, list) for d in data):
            raise BadRequest("tensor data mixes nested lists and scalars")
        data = list(chain.from_iterable(data))
    return data


def _check_oip_datatype(name: str, datatype: str, ctype: ColumnType) -> None:
    if datatype not in _OIP_ACCEPTS[ctype]:
        raise BadRequest(
            f"input {name!r}: datatype {datatype} does not fit the model's "
            f"{ctype.value} column (use {ctype.oip_datatype})"
        )


def _tensor_array(
    name: str, datatype: str, shape: list[int], data: list[Any]
) -> np.ndarray[Any, Any]:
    try:
        return np.array(data, dtype=_OIP_NUMPY[datatype]).reshape(shape)
    except (ValueError, TypeError, OverflowError) as e:
        raise BadRequest(f"input {name!r}: data does not fit {datatype}: {e}") from None


def oip_outputs(predictions: Any) -> list[dict[str, Any]]:
    """Model output as OIP output tensors (one per DataFrame column / dict key)."""
    if isinstance(predictions, pd.DataFrame):
        return [_output(str(c), predictions[c].to_numpy()) for c in predictions.columns]
    if isinstance(predictions, pd.Series):
        name = "output-0" if predictions.name is None else str(predictions.name)
        return [_output(name, predictions.to_numpy())]
    if isinstance(predictions, dict):
        return [_output(str(k), np.asarray(v)) for k, v in predictions.items()]
    return [_output("output-0", np.asarray(predictions))]


def _output(name: str, arr: np.ndarray[Any, Any]) -> dict[str, Any]:
    datatype = oip_datatype_of(arr.dtype)
    data = jsonable_array(arr.reshape(-1))
    if datatype == "BYTES":
        data = [v.decode() if isinstance(v, bytes) else v for v in data]
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}


def oip_response(
    model_name: str, model_version: str, request_id: str | None, predictions: Any
) -> bytes:
    return encode_json(
        {
            "model_name": model_name,
            "model_version": model_version,
            "id": request_id or uuid.uuid4().hex,
            "outputs": oip_outputs(predictions),
        }
    )
