"""Bundle build/sign/verify: the edge must refuse anything it cannot trust."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from models import onnx_export
from models.bundle import (
    BundleError,
    BundleKeyError,
    DigestMismatchError,
    ManifestError,
    MissingFileError,
    SignatureError,
    UnlistedFileError,
    UnsafePathError,
    build_bundle,
    generate_keypair,
    load_private_key,
    load_public_key,
    verify_bundle,
)
from models.runtime import run as run_session


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models")
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    model = LinearRegression().fit(x, x[:, 0] * 2 + 1)
    onnx_export.save(onnx_export.to_onnx_float32(model, 2), out / "timing.onnx")
    (out / "timing.json").write_text(json.dumps({"feature_schema_version": 3}))
    (out / "train_summary.json").write_text(
        json.dumps({"training_data": {"name": "synthetic", "rows": 10}, "metrics": {"mae": 1.5}})
    )
    return out


@pytest.fixture
def bundle(tmp_path: Path, models_dir: Path, keys: tuple[Path, Path]) -> Path:
    return build_bundle(models_dir, tmp_path / "b", load_private_key(keys[0]), version="1.2.3")


def test_built_bundle_verifies_and_runs(bundle: Path, keys: tuple[Path, Path]) -> None:
    verified = verify_bundle(bundle, keys[1])
    assert verified.version == "1.2.3"
    assert verified.manifest["feature_schemas"] == {"timing": 3}
    assert verified.manifest["training_data"]["rows"] == 10
    assert verified.manifest["metrics"] == {"mae": 1.5}
    assert set(verified.manifest["files"]) == {"timing.onnx", "timing.json"}
    out = run_session(verified.onnx_session("timing.onnx"), [[3.0, 4.0]])
    assert out.ravel()[0] == pytest.approx(7.0, abs=1e-4)


def test_tar_gz_round_trip(tmp_path: Path, models_dir: Path, keys: tuple[Path, Path]) -> None:
    archive = build_bundle(
        models_dir, tmp_path / "b.tar.gz", load_private_key(keys[0]), version="7"
    )
    verified = verify_bundle(archive, keys[1])
    assert verified.version == "7"
    assert not (tmp_path / "x").exists()  # verified in memory, nothing unpacked
    with tarfile.open(archive) as tar:  # what a verifier reads first
        assert tar.getnames()[:2] == ["manifest.json", "manifest.sig"]
    verified.write_to(tmp_path / "installed")
    assert verify_bundle(tmp_path / "installed", keys[1]).files == verified.files


def test_changed_file_is_refused(bundle: Path, keys: tuple[Path, Path]) -> None:
    onnx_file = bundle / "timing.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(DigestMismatchError, match=r"timing\.onnx"):
        verify_bundle(bundle, keys[1])


def test_wrong_key_is_refused(bundle: Path, tmp_path: Path) -> None:
    _, other_public = generate_keypair(tmp_path / "other")
    with pytest.raises(SignatureError, match="wrong public key"):
        verify_bundle(bundle, other_public)


def test_changed_manifest_is_refused(bundle: Path, keys: tuple[Path, Path]) -> None:
    manifest = bundle / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"1.2.3"', '"9.9.9"'))
    with pytest.raises(SignatureError):
        verify_bundle(bundle, keys[1])


@pytest.mark.parametrize(
    ("name", "error"),
    [("timing.onnx", MissingFileError), ("manifest.sig", SignatureError),
     ("manifest.json", ManifestError)],
)
def test_missing_file_is_refused(
    bundle: Path, keys: tuple[Path, Path], name: str, error: type[BundleError]
) -> None:
    (bundle / name).unlink()
    with pytest.raises(error, match=re.escape(name)):
        verify_bundle(bundle, keys[1])


def test_extra_unlisted_onnx_is_refused(bundle: Path, keys: tuple[Path, Path]) -> None:
    (bundle / "sneaky.onnx").write_bytes((bundle / "timing.onnx").read_bytes())
    with pytest.raises(UnlistedFileError, match=r"sneaky\.onnx"):
        verify_bundle(bundle, keys[1])


def test_symlinked_file_is_refused(bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((bundle / "timing.onnx").read_bytes())
    (bundle / "timing.onnx").unlink()
    (bundle / "timing.onnx").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        verify_bundle(bundle, keys[1])


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("name", ["../evil.onnx", "/etc/evil.onnx", "a/../../evil.onnx"])
def test_archive_path_escape_is_refused(
    tmp_path: Path, keys: tuple[Path, Path], name: str
) -> None:
    info = tarfile.TarInfo(name)
    info.size = 3
    archive = _tar_with(tmp_path / "evil.tar.gz", info, b"abc")
    with pytest.raises(UnsafePathError):
        verify_bundle(archive, keys[1])
    assert not (tmp_path / "evil.onnx").exists()


def test_archive_symlink_member_is_refused(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    info = tarfile.TarInfo("timing.onnx")
    info.type = tarfile.SYMTYPE
    info.linkname = "/etc/passwd"
    archive = _tar_with(tmp_path / "link.tar.gz", info)
    with pytest.raises(UnsafePathError, match="link"):
        verify_bundle(archive, keys[1])


def test_keygen_refuses_to_overwrite_and_bad_key_files(tmp_path: Path) -> None:
    priv, _ = generate_keypair(tmp_path)
    assert priv.stat().st_mode & 0o777 == 0o600
    with pytest.raises(BundleKeyError, match="already exists"):
        generate_keypair(tmp_path)
    with pytest.raises(BundleKeyError):
        load_public_key(priv)  # a private key where a public one is expected
    with pytest.raises(BundleKeyError):
        load_private_key(tmp_path / "nope.pem")


def test_build_refuses_empty_models_dir(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(BundleError, match=r"no \.onnx"):
        build_bundle(tmp_path / "m", tmp_path / "b", load_private_key(keys[0]), version="1")


def _archive(path: Path, members: list[tuple[str, bytes | int]]) -> Path:
    """A .tar.gz of (name, bytes) members; an int is that many zero bytes, streamed."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, int):
                info.size = content
                tar.addfile(info, _Zeros(content))
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def test_tar_bomb_is_refused_before_reading_more_than_the_manifest_allows(
        bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    """A signed manifest, then a member far larger than the size it lists: refused from its
    header, in well under the time inflating it would take."""
    listed = json.loads((bundle / "manifest.json").read_bytes())["files"]
    bomb = _archive(tmp_path / "bomb.tar.gz", [
        ("manifest.json", (bundle / "manifest.json").read_bytes()),
        ("manifest.sig", (bundle / "manifest.sig").read_bytes()),
        ("timing.onnx", 1 << 30)])  # 1 GiB of zeros, about 1 MB compressed
    assert bomb.stat().st_size < 2 << 20
    started = time.perf_counter()
    with pytest.raises(DigestMismatchError, match="size differs"):
        verify_bundle(bomb, keys[1])
    assert time.perf_counter() - started < 1.0  # inflating 1 GiB takes several seconds
    assert listed["timing.onnx"]["bytes"] < 1 << 20


def test_unsigned_archive_costs_nothing(bundle: Path, keys: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    """Nothing after a bad signature is read: the bomb behind it is never inflated."""
    forged = (bundle / "manifest.json").read_bytes().replace(b'"1.2.3"', b'"9.9.9"')
    archive = _archive(tmp_path / "forged.tar.gz", [
        ("manifest.json", forged), ("manifest.sig", (bundle / "manifest.sig").read_bytes()),
        ("timing.onnx", 1 << 30)])
    started = time.perf_counter()
    with pytest.raises(SignatureError):
        verify_bundle(archive, keys[1])
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("where", ["archive", "directory"])
def test_oversized_manifest_is_refused_unread(bundle: Path, keys: tuple[Path, Path],
                                              tmp_path: Path, where: str) -> None:
    if where == "archive":
        path = _archive(tmp_path / "big.tar.gz", [("manifest.json", 64 << 20)])
    else:
        path = tmp_path / "big"
        path.mkdir()
        with (path / "manifest.json").open("wb") as fh:
            fh.truncate(64 << 20)  # sparse: refused from its size, never read
    with pytest.raises(BundleError, match=r"manifest\.json holds"):
        verify_bundle(path, keys[1])


def test_archive_not_starting_with_its_manifest_is_refused(
        bundle: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    archive = _archive(tmp_path / "old.tar.gz", [
        ("timing.onnx", (bundle / "timing.onnx").read_bytes()),
        ("manifest.json", (bundle / "manifest.json").read_bytes())])
    with pytest.raises(ManifestError, match="does not start with"):
        verify_bundle(archive, keys[1])


def test_refusals_name_no_path_of_the_machine(keys: tuple[Path, Path], tmp_path: Path) -> None:
    for path in (tmp_path / "no-such-bundle", tmp_path / "no-such.tar.gz"):
        with pytest.raises(BundleError) as refused:
            verify_bundle(path, keys[1])
        assert str(tmp_path) not in str(refused.value)
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(BundleError) as refused:
        verify_bundle(broken, keys[1])
    assert str(tmp_path) not in str(refused.value)


def test_a_bundle_verifies_against_any_of_the_trusted_keys(bundle: Path, keys: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    """A store trusts the fleet's key and its own: either may have signed a bundle."""
    _, other_public = generate_keypair(tmp_path / "other")
    assert verify_bundle(bundle, [other_public, keys[1]]).version == "1.2.3"
    with pytest.raises(SignatureError):
        verify_bundle(bundle, [other_public])
