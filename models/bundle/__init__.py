"""Signed model bundles: build (cloud), verify and load (edge). See docs/models-timing.md.

The edge loads a bundle only through :func:`verify_bundle`, which returns the verified
file bytes; every refusal is a :class:`BundleError` subclass naming the problem.
"""

from models.bundle.build import build_bundle
from models.bundle.errors import (
    BundleError,
    BundleKeyError,
    DigestMismatchError,
    FeatureSchemaError,
    ManifestError,
    MissingFileError,
    SignatureError,
    UnlistedFileError,
    UnsafePathError,
)
from models.bundle.keys import generate_keypair, load_private_key, load_public_key
from models.bundle.verify import VerifiedBundle, verify_bundle

__all__ = [
    "BundleError",
    "BundleKeyError",
    "DigestMismatchError",
    "FeatureSchemaError",
    "ManifestError",
    "MissingFileError",
    "SignatureError",
    "UnlistedFileError",
    "UnsafePathError",
    "VerifiedBundle",
    "build_bundle",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "verify_bundle",
]
