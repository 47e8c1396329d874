"""Request bodies in, response bodies out: MLflow scoring JSON (Open Inference Protocol v2: oip.py).

For a model with a column schema (schema.py) the parsers here build the DataFrame the model
receives: columns in signature order, each with exactly the dtype MLflow's enforcement would
give it, after checking every value's JSON type. A wrong column, a wrong type or a malformed
body raises :class:`BadRequest` naming the problem. This is stricter than ``mlflow models
serve``, which casts before it enforces (a ``1.5`` sent for a ``long`` column becomes ``1``).

For any other model the parsers return ``frame=None`` and the caller hands the decoded payload
to MLflow's own parsing (model.py), so exotic signatures behave exactly as under MLflow.

Pure: numpy, pandas, orjson; no MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mlops_operator.runtime.schema import ColumnSchema, ColumnType

# The MLflow scoring protocol's input keys (mlflow.pyfunc.scoring_server).
DF_SPLIT = "dataframe_split"
DF_RECORDS = "dataframe_records"
INSTANCES = "instances"
INPUTS = "inputs"
FORMATS = (DF_SPLIT, DF_RECORDS, INSTANCES, INPUTS)
PARAMS = "params"
# orjson's nesting limit: deeper bodies are refused, never handed to a recursive parser
MAX_DEPTH = 1024

_NUMBER = frozenset({float, int})
_ALLOWED: dict[ColumnType, frozenset[type]] = {
    ColumnType.DOUBLE: frozenset({float, int, type(None)}),
    ColumnType.FLOAT: frozenset({float, int, type(None)}),
    ColumnType.LONG: frozenset({int}),
    ColumnType.INTEGER: frozenset({int}),
    ColumnType.BOOLEAN: frozenset({bool}),
    ColumnType.STRING: frozenset({str, type(None)}),
}
_JSON_TYPE = {
    float: "number",
    int: "integer",
    bool: "boolean",
    str: "string",
    type(None): "null",
    list: "array",
    dict: "object",
}


class BadRequest(ValueError):
    """The client sent something the model cannot take; the message says what."""


@dataclass
class Parsed:
    """A decoded request.

    ``frame`` is the model input already in the exact form MLflow's schema enforcement would
    produce (so enforcement can be skipped), or None when the codec does not handle this
    model/format and ``payload`` must go through MLflow's parser.
    """

    frame: pd.DataFrame | None
    payload: dict[str, Any]
    params: dict[str, Any] | None = None


# --- JSON ------------------------------------------------------------------------------------


def decode_json(body: bytes) -> Any:
    """Parse a JSON body; NaN/Infinity (which Python's json writes) are accepted too."""
    if not body:
        raise BadRequest("request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if e.msg.startswith("depth limit"):
            raise BadRequest(
                f"request body nests deeper than {MAX_DEPTH} levels of arrays and objects"
            ) from None
        if "surrogate" in e.msg:
            raise BadRequest(f"request body is not valid JSON: {e}") from None
        # orjson is strict JSON; clients using Python's json may send NaN
        return _decode_lenient(body, e)


def _decode_lenient(body: bytes, strict_error: orjson.JSONDecodeError) -> Any:
    try:
        doc = json.loads(body)
    except RecursionError:
        raise BadRequest(
            f"request body nests deeper than {MAX_DEPTH} levels of arrays and objects"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"request body is not valid JSON: {strict_error}") from None
    try:  # Python's json lets a lone surrogate through (an escaped "\ud800"), orjson does not
        orjson.dumps(doc)
    except orjson.JSONEncodeError as e:
        if "surrogate" in str(e):
            raise BadRequest(f"request body is not valid JSON: {e}") from None
    return doc


def encode_json(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # object arrays, numpy scalars inside lists, bytes, timestamps: MLflow's own encoder
        from mlflow.utils.proto_json_utils import NumpyEncoder

        return json.dumps(obj, cls=NumpyEncoder).encode()


# --- MLflow scoring protocol (/invocations) --------------------------------------------------


def parse_invocations(body: bytes, schema: ColumnSchema | None) -> Parsed:
    """Parse an ``application/json`` body of ``POST /invocations``."""
    payload = decode_json(body)
    if not isinstance(payload, dict):
        raise BadRequest(
            f"expected a JSON object with one of the keys {list(FORMATS)}, "
            f"got a JSON {_JSON_TYPE.get(type(payload), 'value')}"
        )
    keys = [k for k in payload if k in FORMATS]
    if len(keys) != 1:
        raise BadRequest(
            f"expected exactly one of the keys {list(FORMATS)} (and optionally {PARAMS!r}), "
            f"got {sorted(payload)}"
        )
    params = payload.get(PARAMS)
    if params is not None and not isinstance(params, dict):
        raise BadRequest(f"{PARAMS!r} must be a JSON object")
    if schema is None:
        return Parsed(None, payload, params)
    fmt = keys[0]
    data = payload[fmt]
    if fmt == DF_SPLIT:
        frame = _from_split(data, schema)
    elif fmt == DF_RECORDS:
        frame = _from_records(data, schema, DF_RECORDS)
    elif isinstance(data, dict):  # instances/inputs as {"column": [values], ...}
        frame = _from_columns(data, schema, fmt)
    elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
        frame = _from_records(data, schema, fmt)
    else:
        return Parsed(None, payload, params)  # tensors: MLflow's parser decides
    return Parsed(frame, payload, params)


def _from_split(data: Any, schema: ColumnSchema) -> pd.DataFrame:
    if not isinstance(data, dict):
        raise BadRequest(f"{DF_SPLIT} must be an object with 'columns' and 'data'")
    extra = set(data) - {"columns", "data", "index"}
    if extra or "data" not in data:
        raise BadRequest(
            f"{DF_SPLIT} must have 'data' and optionally 'columns' and 'index'; got {sorted(data)}"
        )
    columns, rows = data.get("columns"), data["data"]
    if columns is None:
        raise BadRequest(f"{DF_SPLIT} needs 'columns': the model expects columns {schema.names}")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest(f"{DF_SPLIT}.columns must be a list of strings")
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise BadRequest(f"{DF_SPLIT}.data must be a list of rows (lists)")
    if len(set(columns)) != len(columns):
        raise BadRequest(f"{DF_SPLIT}.columns has duplicates: {columns}")
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise BadRequest(
                f"{DF_SPLIT}.data row {i} has {len(row)} values for {len(columns)} columns"
            )
    check_columns(columns, schema)
    return rows_to_frame(columns, rows, schema)


def _from_records(data: Any, schema: ColumnSchema, where: str) -> pd.DataFrame:
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BadRequest(f"{where} must be a list of records (objects)")
    seen: set[str] = set()
    for rec in data:
        seen.update(rec)
    check_columns(list(seen) if data else schema.names, schema)
    present = [c for c in schema.columns if c.name in seen or not data]
    values = {c.name: [rec.get(c.name) for rec in data] for c in present}
    return typed_frame(values, schema, len(data), where)


def _from_columns(data: dict[str, Any], schema: ColumnSchema, where: str) -> pd.DataFrame:
    check_columns(list(data), schema)
    values: dict[str, list[Any]] = {}
    n: int | None = None
    for col in schema.columns:
        if col.name not in data:
            continue
        v = data[col.name]
        vals = v if isinstance(v, list) else [v]
        if n is not None and len(vals) != n:
            raise BadRequest(f"{where}: column {col.name!r} has {len(vals)} values, expected {n}")
        n = len(vals)
        values[col.name] = vals
    return typed_frame(values, schema, n or 0, where)


def rows_to_frame(
    columns: Sequence[str], rows: list[list[Any]], schema: ColumnSchema, where: str = DF_SPLIT
) -> pd.DataFrame:
    """Rows of JSON values (in ``columns`` order) as the model's input frame."""
    if not rows:
        raise BadRequest(f"{where}: the request has no rows")
    if schema.all_double and rows and len(columns) == len(schema.columns):
        # the common tabular case: one float matrix, one allocation, one dtype check
        kinds = set(map(type, chain.from_iterable(rows)))
        if kinds <= _NUMBER:
            matrix = np.array(rows, dtype=np.float64)
            if list(columns) != schema.names:
                matrix = matrix[:, [columns.index(n) for n in schema.names]]
            # Lay the block out column-major, as MLflow's enforcement (a DataFrame rebuilt from
            # its columns) does: the model then sees the same memory order, and BLAS sums in
            # the same order, so predictions match PyFuncModel.predict to the last bit.
            by_column = np.ascontiguousarray(matrix.T)
            return pd.DataFrame(by_column.T, columns=schema.index, copy=False)
    pos = {c: i for i, c in enumerate(columns)}
    values = {c.name: [row[pos[c.name]] for row in rows] for c in schema.columns if c.name in pos}
    return typed_frame(values, schema, len(rows), where)


def check_columns(given: Iterable[str], schema: ColumnSchema) -> None:
    given_set = set(given)
    missing = [c.name for c in schema.columns if c.required and c.name not in given_set]
    if missing:
        unexpected = sorted(given_set - set(schema.by_name))
        hint = f"; unexpected column(s) {unexpected}" if unexpected else ""
        raise BadRequest(
            f"missing required column(s) {missing}{hint}; the model expects {schema.names}"
        )


def typed_frame(
    values: dict[str, list[Any]], schema: ColumnSchema, n: int, where: str
) -> pd.DataFrame:
    if n == 0:
        raise BadRequest(f"{where}: the request has no rows")
    arrays = {
        c.name: column_array(c.name, values[c.name], c.type, where)
        for c in schema.columns
        if c.name in values
    }
    frame = pd.DataFrame(arrays, index=pd.RangeIndex(n), copy=False)
    if len(arrays) == len(schema.columns):
        frame.columns = schema.index  # see ColumnSchema.index
    return frame


def column_array(
    name: str, values: list[Any], ctype: ColumnType, where: str = "input"
) -> np.ndarray[Any, Any]:
    """One column's JSON values as a numpy array of the column's dtype, or BadRequest."""
    kinds = set(map(type, values))
    bad = kinds - _ALLOWED[ctype]
    if bad:
        i, v = next((i, v) for i, v in enumerate(values) if type(v) in bad)
        if v is None:
            raise BadRequest(f"{where}: column {name!r} ({ctype.value}) cannot be null (row {i})")
        raise BadRequest(
            f"{where}: column {name!r} expects {ctype.value} values, "
            f"got {_JSON_TYPE.get(type(v), type(v).__name__)} {_short(v)} (row {i})"
        )
    dtype = ctype.numpy_dtype
    if ctype is ColumnType.STRING:
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr
    try:
        if ctype is ColumnType.INTEGER:
            wide = np.array(values, dtype=np.int64)
            if len(wide) and (wide.min() < -(2**31) or wide.max() >= 2**31):
                raise OverflowError("outside the 32-bit range")
            return wide.astype(np.int32)
        return np.array(values, dtype=dtype)
    except OverflowError as e:
        raise BadRequest(f"{where}: column {name!r} ({ctype.value}) value too large: {e}") from None


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def jsonable_array(arr: np.ndarray[Any, Any]) -> Any:
    """An array orjson writes with the same values as MLflow's ``tolist()`` would.

    float32/float16 are widened to float64 first: that is exact, and it makes the JSON number
    the float's true value (what ``tolist()`` gives) rather than its shortest float32 repr.
    """
    kind = arr.dtype.kind
    if kind == "f":
        return np.ascontiguousarray(arr, dtype=np.float64)
    if kind in "biu" and arr.dtype.itemsize <= 8:
        return np.ascontiguousarray(arr)
    return arr.tolist()


def parse_csv(body: bytes, schema: Any) -> Parsed:
    """A text/csv body (MLflow's scoring server takes it too), through the JSON path so that
    CSV gets the same column and type checks."""
    import io

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"request body is not valid CSV: {e}") from None
    if schema is not None:
        split = {"columns": [str(c) for c in frame.columns], "data": frame.to_numpy().tolist()}
        return parse_invocations(encode_json({"dataframe_split": split}), schema)
    return Parsed(frame, {}, None)


def invocations_response(predictions: Any) -> bytes:
    """``{"predictions": ...}`` exactly as MLflow's scoring server shapes it."""
    if isinstance(predictions, pd.DataFrame):
        out: Any = predictions.to_dict(orient="records")
    elif isinstance(predictions, pd.Series):
        out = pd.DataFrame(predictions).to_dict(orient="records")
    elif isinstance(predictions, np.ndarray):
        out = jsonable_array(predictions)
    else:
        out = predictions
    return encode_json({"predictions": out})
