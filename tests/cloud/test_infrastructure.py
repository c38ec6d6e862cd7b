"""The CloudFormation template lints cleanly and cannot drift from the code: its store policy
is `store_policy_document()` and its lake workers use `lake_subscription()`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from cloud_sync.fleet.policy import STORE_POLICY_NAME, store_policy_document
from cloud_sync.infrastructure import TEMPLATE_PATH
from cloud_sync.topics import lake_subscription, uplink_topic

REGION, ACCOUNT, PARTITION = "eu-west-1", "123456789012", "aws"
LAKE_ARN = f"arn:{PARTITION}:s3:::lake"
RELEASES_ARN = f"arn:{PARTITION}:s3:::releases"
# What `${...}` and `!GetAtt` resolve to here: pseudo parameters and the attributes used.
KNOWN = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
         "LakeBucket.Arn": LAKE_ARN, "ReleasesBucket.Arn": RELEASES_ARN}
ARN = f"arn:{PARTITION}:iot:{REGION}:{ACCOUNT}"
# `${!x}` is Fn::Sub's escape for a literal `${x}` (IoT policy variables).
SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


def _sub(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        if name not in KNOWN:
            raise AssertionError(f"unexpected ${{{name}}} in a policy document")
        return KNOWN[name]
    return SUB_VARIABLE.sub(one, text)


def _resolve(node: Any) -> Any:
    """Plain Python values, with every `Fn::Sub` and `Fn::GetAtt` of KNOWN resolved."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return _sub(node["Fn::Sub"])
        if set(node) == {"Fn::GetAtt"}:
            return _sub("${" + ".".join(node["Fn::GetAtt"]) + "}")
        return {str(key): _resolve(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item) for item in node]
    return str(node) if isinstance(node, str) else node


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE_PATH))


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _cfn_lint() -> str:
    # The console script installed next to this interpreter (cfnlint has no __main__).
    script = Path(sys.executable).with_name("cfn-lint")
    found = str(script) if script.exists() else shutil.which("cfn-lint")
    assert found, "cfn-lint is not installed (pip install -e '.[test]')"
    return found


def test_the_template_passes_cfn_lint_without_a_warning() -> None:
    result = subprocess.run([_cfn_lint(), "--", str(TEMPLATE_PATH)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_store_policy_is_the_fleet_policy_document(template: dict[str, Any]) -> None:
    policy = _resource(template, "StorePolicy")
    assert policy["PolicyName"] == STORE_POLICY_NAME
    assert _resolve(policy["PolicyDocument"]) == store_policy_document(REGION, ACCOUNT, PARTITION)


def test_the_lake_workers_hold_only_the_shared_subscription(template: dict[str, Any]) -> None:
    statements = _resolve(_resource(template, "WorkerPolicy")["PolicyDocument"])["Statement"]
    by_action = {statement["Action"]: statement["Resource"] for statement in statements}
    assert set(by_action) == {"iot:Connect", "iot:Subscribe", "iot:Receive"}
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert by_action["iot:Subscribe"] == f"{ARN}:topicfilter/{lake_subscription()}"
    # Receive is checked on the topic a message was published to, with IoT's `*` wildcard.
    assert by_action["iot:Receive"] == f"{ARN}:topic/{uplink_topic('*')}"

    worker = _resource(template, "WorkerTaskDefinition")["ContainerDefinitions"][0]
    environment = {item["Name"]: item["Value"] for item in worker["Environment"]}
    assert environment["CLOUD_SYNC_LAKE_SUBSCRIPTION"] == lake_subscription()
    prefix = environment["CLOUD_SYNC_IOT_CLIENT_ID_PREFIX"]
    assert by_action["iot:Connect"] == f"{ARN}:client/{prefix}*"


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_the_workers_may_only_add_to_the_lake(template: dict[str, Any]) -> None:
    policies = _resource(template, "WorkerTaskRole")["Policies"]
    statements = [statement for policy in policies
                  for statement in _resolve(policy["PolicyDocument"])["Statement"]]
    granted = {(action, str(statement["Resource"])) for statement in statements
               for action in _actions(statement)}
    assert granted == {("s3:PutObject", f"{LAKE_ARN}/events/*"),
                       ("s3:GetObject", f"{LAKE_ARN}/events/*"),
                       ("s3:ListBucket", LAKE_ARN),
                       ("s3:PutObject", f"{LAKE_ARN}/dead-letters/*")}


def test_releases_are_signed_in_kms_and_presigned_read_only(template: dict[str, Any]) -> None:
    """The fleet key is the scheme the stores verify (ECDSA P-256, models/bundle/signing.py),
    and IoT Jobs may only read releases to presign their URLs."""
    key = _resource(template, "ReleaseSigningKey")
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    role = _resource(template, "ReleasePresignRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    statements = [statement for policy in role["Policies"]
                  for statement in _resolve(policy["PolicyDocument"])["Statement"]]
    granted = {(action, str(statement["Resource"])) for statement in statements
               for action in _actions(statement)}
    assert granted == {("s3:GetObject", f"{RELEASES_ARN}/releases/*")}


def test_the_template_ships_as_package_data() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["*"]
    assert any(TEMPLATE_PATH.match(pattern) for pattern in patterns)
    assert TEMPLATE_PATH.is_file()
