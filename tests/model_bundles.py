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
