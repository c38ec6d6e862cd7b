"""Real signed bundles for the edge tests: trained once per session on generated data."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from models.bundle import build_bundle, generate_keypair, load_private_key
from models.datasets.synthetic import generate_baskets
from models.training import train_all


@dataclass(frozen=True)
class Bundles:
    public_key: Path
    private_key: Path
    models_dir: Path
    v1: Path
    v2: Path

    def build(self, out: Path, version: str, key: Path | None = None) -> Path:
        return build_bundle(self.models_dir, out, load_private_key(key or self.private_key),
                            version=version)

    def tampered(self, out: Path) -> Path:
        """v1 with one model file changed after signing."""
        shutil.copytree(self.v1, out)
        onnx = next(out.glob("*.onnx"))
        onnx.write_bytes(onnx.read_bytes() + b"\0")
        return out


def make_bundles(root: Path) -> Bundles:
    private_key, public_key = generate_keypair(root / "keys")
    models_dir = root / "models"
    # 40-50 baskets a shopper: inside the ranker's 3-50 training range, and months of history
    # for the timing model's time-based split.
    train_all(generate_baskets(min_baskets=40, max_baskets=50, seed=0), models_dir,
              ranker=True)
    bundles = Bundles(public_key, private_key, models_dir, root / "v1", root / "v2")
    bundles.build(bundles.v1, "test-1")
    bundles.build(bundles.v2, "test-2")
    return bundles


def build_with_ranker(bundles: Bundles, out: Path, version: str, ranker: bytes) -> Path:
    """A validly signed bundle whose next-basket ranker is replaced by `ranker` (ONNX)."""
    models_dir = out.with_name(f"{out.name}-models")
    shutil.copytree(bundles.models_dir, models_dir)
    (models_dir / "nbr_ranker.onnx").write_bytes(ranker)
    return build_bundle(models_dir, out, load_private_key(bundles.private_key), version=version)


def _ranker_graph(nodes: list, initializers: list) -> bytes:
    """A ranker with the real one's interface: features [N, F] → probabilities [N, 2]."""
    from onnx import TensorProto, helper

    from models.features.nbr import FEATURE_NAMES

    graph = helper.make_graph(
        nodes, "adversarial-ranker",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                       [None, len(FEATURE_NAMES)])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def nan_ranker() -> bytes:
    """Scores every candidate NaN."""
    import numpy as np
    from onnx import helper, numpy_helper

    return _ranker_graph(
        [helper.make_node("Slice", ["features", "start", "end", "axis"], ["two"]),
         helper.make_node("Mul", ["two", "nan"], ["probabilities"])],
        [numpy_helper.from_array(np.array([0], np.int64), "start"),
         numpy_helper.from_array(np.array([2], np.int64), "end"),
         numpy_helper.from_array(np.array([1], np.int64), "axis"),
         numpy_helper.from_array(np.array(np.nan, np.float32), "nan")])


def slow_ranker(layers: int = 400, width: int = 1024) -> bytes:
    """Finite scores, but cost grows with the rows: tens of ms on a 3-item shopper, seconds
    on the ~300 candidates of a loyal one (what a model trained wrong or tampered might do).
    400 layers: with 100, the smoke test's widest shopper of a 150-item test catalog took
    ~250 ms on a busy machine, the very budget, and the bundle was sometimes accepted."""
    import numpy as np
    from onnx import helper, numpy_helper

    from models.features.nbr import FEATURE_NAMES

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["features", "w_in"], ["h0"])]
    for n in range(layers):
        nodes += [helper.make_node("MatMul", [f"h{n}", "w"], [f"m{n}"]),
                  helper.make_node("Tanh", [f"m{n}"], [f"h{n + 1}"])]
    nodes += [helper.make_node("ReduceMean", [f"h{layers}"], ["mean"], axes=[1], keepdims=1),
              helper.make_node("Sigmoid", ["mean"], ["p"]),
              helper.make_node("Sub", ["one", "p"], ["q"]),
              helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1)]
    w_in = rng.normal(0, 0.1, (len(FEATURE_NAMES), width)).astype(np.float32)
    return _ranker_graph(nodes, [
        numpy_helper.from_array(w_in, "w_in"),
        numpy_helper.from_array(rng.normal(0, 0.03, (width, width)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one")])
