"""The `cloud-sync` command's entry point, and the one message both command lines give when
a command needs an extra this install left out (a store's gateway has the package, not
boto3, Dask or scikit-learn): one line naming the extra, not a traceback."""

from __future__ import annotations

import sys

# What the extras of pyproject.toml add, by top-level module name; a missing module not
# in here is a bug, and keeps its traceback.
OPTIONAL_MODULES = frozenset({"sklearn", "skl2onnx", "onnx", "threadpoolctl", "pandas",
                              "boto3", "botocore", "pyarrow", "dask", "distributed", "moto",
                              "amqtt"})


def missing_extra(command: str, exc: ModuleNotFoundError, extra: str) -> str | None:
    """The line to print if `exc` is an extra's module missing; None if it is not."""
    if (exc.name or "").split(".")[0] not in OPTIONAL_MODULES:
        return None
    return (f"{command}: needs {exc.name}, which this install leaves out;"
            f" pip install 'instore-personalization[{extra}]'")


def main() -> int:
    try:
        from cloud_sync.cli import main as run

        return run()
    except ModuleNotFoundError as exc:
        message = missing_extra("cloud-sync", exc, "cloud")
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
