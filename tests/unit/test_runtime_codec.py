"""Request parsing and response encoding of the runtime (runtime/codec.py): pure."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mlops_operator.runtime import codec
from mlops_operator.runtime import oip as oip_codec
from mlops_operator.runtime.codec import BadRequest, parse_invocations
from mlops_operator.runtime.oip import parse_oip
from mlops_operator.runtime.schema import Column, ColumnSchema, ColumnType

DOUBLES = ColumnSchema((Column("a", ColumnType.DOUBLE), Column("b", ColumnType.DOUBLE)))
MIXED = ColumnSchema(
    (
        Column("x", ColumnType.DOUBLE),
        Column("n", ColumnType.LONG),
        Column("i", ColumnType.INTEGER),
        Column("f", ColumnType.FLOAT),
        Column("ok", ColumnType.BOOLEAN),
        Column("s", ColumnType.STRING),
    )
)


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def frame_of(obj: Any, schema: ColumnSchema = DOUBLES) -> pd.DataFrame:
    parsed = parse_invocations(body(obj), schema)
    assert parsed.frame is not None
    return parsed.frame


def test_split_builds_one_float_matrix_in_signature_order() -> None:
    f = frame_of({"dataframe_split": {"columns": ["b", "a"], "data": [[1.5, 2], [3, 4.25]]}})
    assert list(f.columns) == ["a", "b"]
    assert f.dtypes.tolist() == [np.float64, np.float64]
    assert f.to_numpy().tolist() == [[2.0, 1.5], [4.25, 3.0]]


def test_records_inputs_and_instances_give_the_same_frame() -> None:
    rows = [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]
    expected = frame_of({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}})
    for payload in (
        {"dataframe_records": rows},
        {"instances": rows},
        {"inputs": {"a": [1.0, 3.0], "b": [2.0, 4.0]}},
        {"inputs": rows},
    ):
        pd.testing.assert_frame_equal(frame_of(payload), expected)


def test_mixed_types_get_exactly_the_signature_dtypes() -> None:
    rows = [[0.5, 7, 3, 1.25, True, "x"], [1, 8, 4, 2, False, None]]
    f = frame_of({"dataframe_split": {"columns": MIXED.names, "data": rows}}, MIXED)
    assert [str(t) for t in f.dtypes] == ["float64", "int64", "int32", "float32", "bool", "str"]
    assert f["s"].tolist()[0] == "x" and pd.isna(f["s"].tolist()[1])


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("x", "abc", ["'x'", "double", "string", "row 1"]),
        ("x", True, ["'x'", "double", "boolean"]),
        ("n", 1.5, ["'n'", "long", "number"]),
        ("n", None, ["'n'", "cannot be null"]),
        ("i", 2**40, ["'i'", "too large"]),
        ("ok", 1, ["'ok'", "boolean", "integer"]),
        ("s", 3, ["'s'", "string", "integer"]),
        ("x", [1, 2], ["'x'", "array"]),
    ],
)
def test_wrong_types_name_the_column_and_the_problem(
    column: str, value: Any, words: list[str]
) -> None:
    good = {"x": 0.5, "n": 1, "i": 2, "f": 0.5, "ok": True, "s": "a"}
    bad = dict(good, **{column: value})
    with pytest.raises(BadRequest) as e:
        parse_invocations(body({"dataframe_records": [good, bad]}), MIXED)
    for w in words:
        assert w in str(e.value)


def test_missing_and_misspelled_columns() -> None:
    with pytest.raises(BadRequest, match=r"missing required column\(s\) \['b'\]; unexpected"):
        parse_invocations(
            body({"dataframe_split": {"columns": ["a", "B"], "data": [[1, 2]]}}), DOUBLES
        )


def test_extra_columns_are_ignored_like_mlflow() -> None:
    f = frame_of({"dataframe_records": [{"a": 1, "b": 2, "extra": "x"}]})
    assert list(f.columns) == ["a", "b"]


def test_records_missing_a_key_mean_null() -> None:
    f = frame_of({"dataframe_records": [{"a": 1, "b": 2}, {"a": 3}]})
    assert np.isnan(f["b"].iloc[1])


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "got a JSON array"),
        (b'{"data": []}', "exactly one of the keys"),
        (b'{"dataframe_split": {}, "inputs": {}}', "exactly one of the keys"),
        (b'{"dataframe_split": [[1, 2]]}', "must be an object"),
        (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}', "row 0 has 1 values"),
        (b'{"dataframe_split": {"data": [[1, 2]]}}', "needs 'columns'"),
        (b'{"dataframe_split": {"columns": ["a", "b"], "data": []}}', "no rows"),
        (b'{"dataframe_records": {"a": 1}}', "list of records"),
        (b'{"dataframe_records": [{"a": 1, "b": 1}], "params": 3}', "'params' must be"),
        (b'{"inputs": {"a": [1, 2], "b": [1]}}', "has 1 values, expected 2"),
    ],
)
def test_malformed_bodies(raw: bytes, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        parse_invocations(raw, DOUBLES)


DEEP = 5000  # levels; about 10 kB


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[" * DEEP + b"]" * DEEP, "nests deeper than 1024 levels"),
        (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nests deeper than 1024 levels"),
        (
            b'{"dataframe_split": {"columns": ["a", "b"], "data": '
            + b"[" * DEEP
            + b"]" * DEEP
            + b"}}",
            "nests deeper than 1024 levels",
        ),
        # lenient path (NaN), then too deep for Python's recursive parser
        (b"[NaN, " + b"[" * 1010 + b"]" * 1010 + b"]", "nests deeper than 1024 levels"),
        (b'{"dataframe_records": [{"a": 1, "b": "\\ud800"}]}', "surrogate"),
        # the lenient path would let the lone surrogate through
        (b'{"dataframe_records": [{"a": NaN, "b": "\\udc00"}]}', "surrogate"),
        (b'{"dataframe_records": [{"a": 1, "b": "\xff"}]}', "not valid JSON"),
    ],
)
def test_hostile_json_is_refused_by_name(raw: bytes, words: str) -> None:
    for schema in (DOUBLES, None):
        with pytest.raises(BadRequest, match=words):
            parse_invocations(raw, schema)


def test_nan_from_pythons_json_is_accepted() -> None:
    raw = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[NaN, 1]]}}'
    parsed = parse_invocations(raw, DOUBLES)
    assert parsed.frame is not None and np.isnan(parsed.frame["a"].iloc[0])


def test_without_a_column_schema_mlflow_parses() -> None:
    parsed = parse_invocations(body({"instances": [[1, 2]], "params": {"k": 1}}), None)
    assert parsed.frame is None
    assert parsed.params == {"k": 1}
    assert parsed.payload["instances"] == [[1, 2]]


def test_tensor_style_instances_are_left_to_mlflow() -> None:
    parsed = parse_invocations(body({"instances": [[1.0, 2.0]]}), DOUBLES)
    assert parsed.frame is None


# --- Open Inference Protocol -----------------------------------------------------------------


def oip(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return body({"inputs": inputs, **extra})


def test_oip_one_tensor_per_column() -> None:
    parsed, rid = parse_oip(
        oip(
            [
                {"name": "b", "shape": [2], "datatype": "FP64", "data": [3, 4]},
                {"name": "a", "shape": [2, 1], "datatype": "FP32", "data": [[1], [2]]},
            ],
            id="req-1",
        ),
        DOUBLES,
    )
    assert rid == "req-1"
    assert parsed.frame is not None
    assert parsed.frame.to_numpy().tolist() == [[1.0, 3.0], [2.0, 4.0]]


def test_oip_single_matrix_in_signature_order() -> None:
    parsed, _ = parse_oip(
        oip([{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]), DOUBLES
    )
    assert parsed.frame is not None
    assert parsed.frame.to_numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([{"name": "a", "shape": [3], "datatype": "FP64", "data": [1, 2]}], "needs 3 values"),
        ([{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}], "datatype BYTES"),
        ([{"name": "a", "shape": [1], "datatype": "FP99", "data": [1]}], "unknown datatype"),
        ([{"name": "zz", "shape": [1], "datatype": "FP64", "data": [1]}], "unknown input"),
        ([{"name": "a", "shape": [1], "datatype": "FP64"}], "missing \\['data'\\]"),
        ([{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}], "missing required"),
        (
            [
                {"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},
                {"name": "b", "shape": [2], "datatype": "FP64", "data": [1, 2]},
            ],
            "2 rows, other inputs have 1",
        ),
        ([{"name": "a", "shape": [-1], "datatype": "FP64", "data": [1]}], "non-negative"),
        (
            [
                {"name": "a", "shape": [1], "datatype": "FP64", "data": ["x"]},
                {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]},
            ],
            "expects double",
        ),
    ],
)
def test_oip_errors(inputs: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        parse_oip(oip(inputs), DOUBLES)


@pytest.mark.parametrize("raw", [b"{}", b'{"inputs": []}', b'{"inputs": 3}', b"[]", b"nope"])
def test_oip_garbage(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_oip(raw, DOUBLES)


def test_oip_without_schema_builds_typed_tensors() -> None:
    parsed, _ = parse_oip(
        oip([{"name": "t", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}]), None
    )
    arr = parsed.payload["inputs"]["t"]
    assert arr.dtype == np.int32 and arr.shape == (2, 2)


# --- responses -----------------------------------------------------------------------------


def test_invocations_response_matches_mlflow_shapes() -> None:
    assert orjson.loads(codec.invocations_response(np.array([0, 1]))) == {"predictions": [0, 1]}
    df = pd.DataFrame({"p": [0.5, 0.25], "label": ["a", "b"]})
    assert orjson.loads(codec.invocations_response(df)) == {
        "predictions": [{"p": 0.5, "label": "a"}, {"p": 0.25, "label": "b"}]
    }
    assert orjson.loads(codec.invocations_response(pd.Series([1, 2], name="y"))) == {
        "predictions": [{"y": 1}, {"y": 2}]
    }
    assert orjson.loads(codec.invocations_response(np.array(["a", "b"], dtype=object))) == {
        "predictions": ["a", "b"]
    }


def test_float32_predictions_keep_their_exact_value() -> None:
    arr = np.array([0.1, 1 / 3], dtype=np.float32)
    got = orjson.loads(codec.invocations_response(arr))["predictions"]
    assert got == arr.tolist()  # what MLflow's encoder writes
    assert np.array(got, dtype=np.float32).tolist() == arr.tolist()


def test_oip_outputs() -> None:
    out = orjson.loads(oip_codec.oip_response("m", "3", None, np.array([[0.5, 0.5]])))
    assert out["model_name"] == "m" and out["model_version"] == "3" and out["id"]
    assert out["outputs"] == [
        {"name": "output-0", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 0.5]}
    ]
    df = pd.DataFrame({"label": ["a"], "n": np.array([1], dtype=np.int32)})
    outs = oip_codec.oip_outputs(df)
    assert [(o["name"], o["datatype"], list(o["data"])) for o in outs] == [
        ("label", "BYTES", ["a"]),
        ("n", "INT32", [1]),
    ]
