"""A ``.pt2`` file is untrusted: property-based fuzzing of its reader (:func:`checked_program`)
and of the expression and guard checks that stand between its text and ``sympify``/``compile``.

Whatever the bytes, the reader either accepts them or raises :class:`ArtifactError` (one line);
an accepted expression or guard holds nothing Python could use to reach code (no attribute
access, no subscripts but the size accessor, no names but sympy's)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossport.artifact.metadata import read_any_metadata
from lossport.artifact.pt2 import checked_program, safe_expression, safe_guard
from lossport.errors import ArtifactError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PIECES = [
    "Symbol('s1', positive=True, integer=True)", "Integer(3)", "Add(", "Mul(", ")", ", ", "__import__",
    "'os'", ".system", "(", "lambda", "eval", "[0]", "getattr", "L['x'].size()[0]", " // ", " < ", "**",
    "().__class__", "exec", "FloorDiv(", "1e5", "\\n", ";", "import",
]  # fmt: skip
texts = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(PIECES), max_size=12).map("".join))


def _archive(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


@FUZZ
@given(texts)
def test_an_accepted_expression_cannot_reach_code(text):
    if safe_expression(text):
        assert "." not in re.sub(r"'[^']*'|\d+\.\d+", "", text)
        assert not {"__import__", "lambda", "eval", "exec", "getattr", "import", "["} & set(
            re.findall(r"\w+|\[", text)
        )


@FUZZ
@given(texts)
def test_an_accepted_guard_is_size_arithmetic(text):
    if safe_guard(text):
        rest = re.sub(r"L\['\w+'\](\[\d+\])?\.size\(\)\[\d+\]", "x", text)
        assert re.fullmatch(r"[x0-9+\-*/%()<>=! ]*", rest) and "**" not in text


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_are_accepted_or_refused_in_one_line(tmp_path, data):
    path = tmp_path / "x.pt2"
    path.write_bytes(data)
    try:
        checked_program(path)
    except ArtifactError as exc:
        assert "\n" not in str(exc)


names = st.sampled_from(
    [
        "r/models/model.json", "r/data/sample_inputs/model.pt", "r/extra/lossport.spec", "r/archive_version",
        "r/data/weights/model_weights_config.json", "r/data/weights/weight_0", "r/data/aotinductor/m/a.so",
        "r/data/constants/custom_obj_0", "other/models/model.json", "r/../evil", "r/extra/lossport.format",
    ]
)  # fmt: skip
contents = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [b"{}", b'{"config": {"w": {"use_pickle": true, "path_name": "weight_0"}}}', b"[" * 5000]
    ),
)


@FUZZ
@given(st.lists(st.tuples(names, contents), max_size=8))
def test_any_archive_is_accepted_or_refused_in_one_line(tmp_path, entries):
    path = tmp_path / "x.pt2"
    path.write_bytes(_archive(entries))
    for read in (checked_program, read_any_metadata):
        try:
            read(path)
        except ArtifactError as exc:
            assert "\n" not in str(exc)


def test_a_pickled_weight_is_refused(tmp_path):
    path = tmp_path / "x.pt2"
    config = b'{"config": {"w": {"use_pickle": true, "path_name": "weight_0"}}}'
    path.write_bytes(
        _archive(
            [
                ("r/models/model.json", b"{}"),
                ("r/data/sample_inputs/model.pt", b""),
                ("r/data/weights/model_weights_config.json", config),
            ]
        )
    )
    with pytest.raises(ArtifactError, match="pickled"):
        checked_program(path)
