"""Export fitted scikit-learn models to ONNX, run them, and check parity.

Every model the edge serves goes through here: converted by skl2onnx with a float32
input (ONNX Runtime on the edge feeds float32 feature rows), then compared with the
scikit-learn model on held-out rows before it may enter a bundle. The parity check is
shared with the next-basket ranker's export (``models.nbr``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from models.runtime import inference_session

logger = logging.getLogger(__name__)

# One input name for every exported model, so the edge feeds every session the same way.
INPUT_NAME = "features"
# Trees compare float32 features against float32 thresholds in ONNX but float64 ones in
# scikit-learn; a row sitting right on a threshold may fall on the other side, so parity
# is judged on the large majority of rows plus a bound on the typical error.
DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
# Share of rows allowed to differ beyond tolerance (threshold ties, see above).
DEFAULT_MAX_MISMATCH_FRACTION = 0.001
# ONNX standard opset targeted: supported by onnxruntime >= 1.17 (the project's floor).
TARGET_OPSET = 17
ML_OPSET = 1


class OnnxExportError(Exception):
    """A model could not be converted to ONNX, or the ONNX model failed its parity check."""


class ParityError(OnnxExportError):
    """ONNX Runtime disagrees with scikit-learn beyond tolerance."""


def to_onnx_float32(
    model: object,
    n_features: int,
    name: str = "model",
    options: dict[object, dict[str, object]] | None = None,
) -> onnx.ModelProto:
    """Convert a fitted estimator or pipeline with one float32 input ``[N, n_features]``.

    ``options`` go to skl2onnx unchanged; a classifier usually wants
    ``{type(clf): {"zipmap": False}}`` so probabilities come out as a plain tensor.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    try:
        proto = convert_sklearn(
            model,
            name=name,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
            options=options,
        )
    except Exception as exc:  # skl2onnx raises many unrelated types
        raise OnnxExportError(f"cannot convert {type(model).__name__} to ONNX: {exc}") from exc
    onnx.checker.check_model(proto)
    return proto


@dataclass(frozen=True)
class BucketOffsets:
    """Per-row offsets picked by the cell a row falls in on a grid of input columns.

    On each of ``columns``, the row's position is the number of that column's
    ``thresholds`` <= its value (compared in float32, like ONNX); the cell numbers those
    positions in row-major order, and row ``cell`` of ``table`` (``[n_cells, k]``) is added
    to the outputs.
    """

    columns: tuple[int, ...]
    thresholds: tuple[tuple[float, ...], ...]
    table: np.ndarray

    @classmethod
    def zeros(cls, columns: tuple[int, ...], thresholds: tuple[tuple[float, ...], ...],
              k: int) -> BucketOffsets:
        """A grid with every offset 0 (``k`` outputs per cell)."""
        cells = int(np.prod([len(t) + 1 for t in thresholds]))
        return cls(columns, thresholds, np.zeros((cells, k)))

    @property
    def strides(self) -> tuple[int, ...]:
        """Cell-number step of one position on each column (row-major)."""
        sizes = [len(t) + 1 for t in self.thresholds]
        return tuple(int(np.prod(sizes[i + 1:])) for i in range(len(sizes)))

    @property
    def n_cells(self) -> int:
        return len(self.table)

    def bucket_of(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        cell = np.zeros(len(x), dtype=np.int64)
        for column, thresholds, stride in zip(self.columns, self.thresholds, self.strides,
                                              strict=True):
            edges = np.asarray(thresholds, dtype=np.float32)[None, :]
            cell += stride * (x[:, column : column + 1] >= edges).sum(axis=1)
        return cell

    def for_rows(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.table, dtype=np.float64)[self.bucket_of(features)]


def combine_regressors(
    models: Sequence[onnx.ModelProto],
    output_name: str,
    offsets: Sequence[float] | BucketOffsets | None = None,
    exp: bool = False,
    name: str = "combined",
    upper: float | None = None,
) -> onnx.ModelProto:
    """Join single-output regressors sharing the input into one ``[N, k]`` output.

    Optionally adds offsets — one constant per column, or per cell of a grid over input
    columns (e.g. a conformal calibration shift per history length) — applies ``exp`` (for
    models trained on a log target) and caps values at ``upper``, so the edge runs one
    session returning final values.
    """
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    outputs: list[str] = []
    opsets: dict[str, int] = {}
    for i, m in enumerate(models):
        prefixed = onnx.compose.add_prefix(m, f"m{i}_", rename_inputs=False)
        graph = prefixed.graph
        if len(graph.output) != 1:
            raise OnnxExportError(f"model {i} has {len(graph.output)} outputs, expected 1")
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        outputs.append(graph.output[0].name)
        for op in prefixed.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    col = "combined_raw"
    nodes.append(helper.make_node("Concat", outputs, [col], axis=1))
    if isinstance(offsets, BucketOffsets):
        input_name = models[0].graph.input[0].name
        new_nodes, new_inits = _bucket_offset_nodes(input_name, offsets, "row_offsets")
        nodes.extend(new_nodes)
        initializers.extend(new_inits)
        nodes.append(helper.make_node("Add", [col, "row_offsets"], ["combined_shifted"]))
        col = "combined_shifted"
    elif offsets is not None:
        shift = helper.make_tensor(
            "column_offsets", TensorProto.FLOAT, [1, len(offsets)], list(map(float, offsets))
        )
        initializers.append(shift)
        nodes.append(helper.make_node("Add", [col, "column_offsets"], ["combined_shifted"]))
        col = "combined_shifted"
    if upper is None:
        nodes.append(helper.make_node("Exp" if exp else "Identity", [col], [output_name]))
    else:
        initializers.append(helper.make_tensor("upper_bound", TensorProto.FLOAT, [1], [upper]))
        nodes.append(helper.make_node("Exp" if exp else "Identity", [col], ["uncapped"]))
        nodes.append(helper.make_node("Min", ["uncapped", "upper_bound"], [output_name]))
    graph = helper.make_graph(
        nodes,
        name,
        [models[0].graph.input[0]],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [None, len(models)])],
        initializer=initializers,
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
    proto.ir_version = models[0].ir_version
    onnx.checker.check_model(proto)
    return proto


def _bucket_offset_nodes(
    input_name: str, b: BucketOffsets, output: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing ``b.for_rows(input)`` into ``output`` ([N, k] float)."""
    table = np.asarray(b.table, dtype=np.float32)
    inits = [
        helper.make_tensor("bucket_sum_axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("bucket_table", TensorProto.FLOAT, list(table.shape),
                           table.ravel().tolist()),
    ]
    nodes = []
    terms = []
    for i, (column, thresholds, stride) in enumerate(
        zip(b.columns, b.thresholds, b.strides, strict=True)
    ):
        inits += [
            helper.make_tensor(f"bucket_column_{i}", TensorProto.INT64, [1], [column]),
            helper.make_tensor(f"bucket_thresholds_{i}", TensorProto.FLOAT,
                               [1, len(thresholds)], [float(t) for t in thresholds]),
            helper.make_tensor(f"bucket_stride_{i}", TensorProto.FLOAT, [1], [float(stride)]),
        ]
        nodes += [
            helper.make_node("Gather", [input_name, f"bucket_column_{i}"], [f"bucket_x_{i}"],
                             axis=1),
            helper.make_node("GreaterOrEqual", [f"bucket_x_{i}", f"bucket_thresholds_{i}"],
                             [f"bucket_ge_{i}"]),
            helper.make_node("Cast", [f"bucket_ge_{i}"], [f"bucket_ge_f_{i}"],
                             to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", [f"bucket_ge_f_{i}", "bucket_sum_axes"],
                             [f"bucket_pos_{i}"], keepdims=0),
            helper.make_node("Mul", [f"bucket_pos_{i}", f"bucket_stride_{i}"],
                             [f"bucket_term_{i}"]),
        ]
        terms.append(f"bucket_term_{i}")
    nodes += [
        helper.make_node("Sum", terms, ["bucket_f"]),
        helper.make_node("Cast", ["bucket_f"], ["bucket_index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["bucket_table", "bucket_index"], [output], axis=0),
    ]
    return nodes, inits


def session(model: onnx.ModelProto | bytes | Path) -> ort.InferenceSession:
    """An ONNX Runtime CPU session from a proto, serialized bytes or a file."""
    if isinstance(model, onnx.ModelProto):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = model.read_bytes()
    return inference_session(model)


@dataclass(frozen=True)
class ParityReport:
    """Outcome of comparing ONNX Runtime with scikit-learn on the same rows."""

    rows: int
    max_abs_diff: float
    mismatch_fraction: float
    topk_same: bool | None

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "mismatch_fraction": self.mismatch_fraction,
            "topk_same": self.topk_same,
        }


def check_parity(
    reference: np.ndarray,
    onnx_scores: np.ndarray,
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    max_mismatch_fraction: float = DEFAULT_MAX_MISMATCH_FRACTION,
    groups: np.ndarray | None = None,
    k: int = 10,
) -> ParityReport:
    """Compare scores; raise :class:`ParityError` if they disagree.

    ``reference`` are scikit-learn's scores computed on the float32-cast rows. When
    ``groups`` (one id per row, e.g. the shopper of a candidate) is given, the top-``k``
    rows of each group must come out in the same order; ties in the reference are
    allowed to swap.
    """
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    got = np.asarray(onnx_scores, dtype=np.float64).reshape(ref.shape)
    diff = np.abs(ref - got)
    # Written so that a NaN on either side is a mismatch, never a pass.
    bad_rows = ~(diff <= atol + rtol * np.abs(ref)).all(axis=1)
    finite = diff[np.isfinite(diff)]
    report = ParityReport(
        rows=len(ref),
        max_abs_diff=float(finite.max()) if finite.size else 0.0,
        mismatch_fraction=float(bad_rows.mean()) if len(ref) else 0.0,
        topk_same=None if groups is None else _topk_same(ref[:, 0], got[:, 0], groups, k, atol),
    )
    logger.info("parity %s", report.as_dict())
    if report.mismatch_fraction > max_mismatch_fraction:
        raise ParityError(
            f"{report.mismatch_fraction:.4%} of {report.rows} rows differ beyond tolerance "
            f"(max |diff| {report.max_abs_diff:.3g})"
        )
    if report.topk_same is False:
        raise ParityError(f"top-{k} order differs between ONNX Runtime and scikit-learn")
    return report


def _topk_same(ref: np.ndarray, got: np.ndarray, groups: np.ndarray, k: int, tie: float) -> bool:
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    bounds = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1], True])
    for a, b in itertools.pairwise(bounds):
        rows = order[a:b]
        top_ref = rows[np.argsort(-ref[rows], kind="stable")[:k]]
        top_got = rows[np.argsort(-got[rows], kind="stable")[:k]]
        # Same rows in the same order, up to reference ties (equal scores may swap).
        if not np.allclose(ref[top_ref], ref[top_got], atol=tie, rtol=0):
            return False
    return True


def save(model: onnx.ModelProto, path: Path) -> Path:
    """Write an ONNX model; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path
