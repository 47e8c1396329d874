"""The model's input signature, reduced to what the request codec can enforce by itself.

A *column schema* is an MLflow signature of named scalar columns (double, float, long,
integer, boolean, string) — what tabular models have. For these the codec builds a DataFrame
whose columns and dtypes are exactly what MLflow's schema enforcement would produce, so the
model can be called directly (see model.py). Any other signature (tensors, arrays, objects,
binary, datetime, no signature) is left to MLflow's own parsing and enforcement.

Pure: no MLflow import here; :func:`from_mlflow` takes the MLflow object duck-typed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


class ColumnType(enum.Enum):
    """Scalar MLflow data types, by their MLflow names."""

    DOUBLE = "double"
    FLOAT = "float"
    LONG = "long"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return _NUMPY[self]

    @property
    def oip_datatype(self) -> str:
        """Open Inference Protocol datatype advertised in model metadata."""
        return _OIP[self]


_NUMPY: dict[ColumnType, np.dtype[Any]] = {
    ColumnType.DOUBLE: np.dtype(np.float64),
    ColumnType.FLOAT: np.dtype(np.float32),
    ColumnType.LONG: np.dtype(np.int64),
    ColumnType.INTEGER: np.dtype(np.int32),
    ColumnType.BOOLEAN: np.dtype(np.bool_),
    ColumnType.STRING: np.dtype(object),
}
_OIP = {
    ColumnType.DOUBLE: "FP64",
    ColumnType.FLOAT: "FP32",
    ColumnType.LONG: "INT64",
    ColumnType.INTEGER: "INT32",
    ColumnType.BOOLEAN: "BOOL",
    ColumnType.STRING: "BYTES",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = True


@dataclass(frozen=True)
class ColumnSchema:
    """Named scalar columns, in signature order."""

    columns: tuple[Column, ...]
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)
    # Built once and handed to every DataFrame: pandas builds a column index from a list of
    # names at ~4 us per column and request, but takes an Index as is (and then the drift
    # window can recognise the column layout by identity). Object dtype rather than pandas 3's
    # string dtype: scikit-learn's feature-name check walks the names on every predict, ~7%
    # faster for a small model over plain Python strings.
    index: pd.Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        names = [c.name for c in self.columns]
        object.__setattr__(self, "index", pd.Index(names, dtype=object))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def all_double(self) -> bool:
        """Every column is a required double: requests can be parsed as one float matrix."""
        return all(c.type is ColumnType.DOUBLE and c.required for c in self.columns)


def from_mlflow(schema: Any) -> ColumnSchema | None:
    """The column schema of an MLflow ``Schema``, or None if it is not one (see module doc)."""
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    columns = []
    for spec in schema.inputs:
        name = getattr(getattr(spec, "type", None), "name", None)
        try:
            ctype = ColumnType(name)
        except ValueError:
            return None
        if not isinstance(spec.name, str):
            return None
        columns.append(Column(spec.name, ctype, bool(getattr(spec, "required", True))))
    return ColumnSchema(tuple(columns)) if columns else None


# MLflow column types beyond the scalar ones a column schema holds, as OIP datatypes
_OIP_BY_NAME = {t.value: _OIP[t] for t in ColumnType} | {"binary": "BYTES", "datetime": "BYTES"}


def oip_datatype_of(dtype: np.dtype[Any]) -> str:
    """The Open Inference Protocol datatype of a numpy dtype (BYTES for anything not numeric)."""
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def tensor_metadata(schema: Any, default_name: str) -> list[dict[str, Any]]:
    """An MLflow ``Schema`` (inputs or outputs) as OIP metadata tensors: name, datatype, shape.

    Unnamed entries are called ``<default_name>-<i>``, the name the response gives an unnamed
    prediction, so a client can match the metadata with what it receives.
    """
    if schema is None:
        return []
    out: list[dict[str, Any]] = []
    for i, spec in enumerate(schema.inputs):
        name = spec.name if isinstance(spec.name, str) and spec.name else f"{default_name}-{i}"
        if isinstance(spec.type, np.dtype):  # a TensorSpec
            shape = [int(d) for d in spec.shape]
            datatype = oip_datatype_of(spec.type)
        else:  # a ColSpec: one value per row
            shape = [-1]
            datatype = _OIP_BY_NAME.get(str(getattr(spec.type, "name", "")), "BYTES")
        out.append({"name": name, "datatype": datatype, "shape": shape})
    return out
