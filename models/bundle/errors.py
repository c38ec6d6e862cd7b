"""Why a bundle was refused. The edge turns these into a log line and keeps its old model."""

from __future__ import annotations


class BundleError(Exception):
    """A model bundle cannot be built, verified or loaded."""


class BundleKeyError(BundleError):
    """A key file is missing, unreadable or not an ECDSA P-256 key."""


class ManifestError(BundleError):
    """``manifest.json`` is missing, not valid JSON, or lacks a required field."""


class SignatureError(BundleError):
    """``manifest.sig`` is missing or does not verify against the public key."""


class MissingFileError(BundleError):
    """A file listed in the manifest is not in the bundle."""


class DigestMismatchError(BundleError):
    """A file's SHA-256 differs from the one in the manifest (changed or corrupted)."""


class UnlistedFileError(BundleError):
    """The bundle holds a file the manifest does not list (it would load unverified)."""


class UnsafePathError(BundleError):
    """A path escapes the bundle directory, or an archive member is a link or device."""


class FeatureSchemaError(BundleError):
    """A model in the bundle expects another feature schema than this code computes."""
