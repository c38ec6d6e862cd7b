"""Infrastructure as code for the cloud tier: one CloudFormation template, shipped as package
data so a deployment tool can find it next to the code it deploys. The test suite lints it with
cfn-lint and checks it against `cloud_sync.topics` and `cloud_sync.fleet.policy`."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_PATH = Path(__file__).with_name("instore-cloud.yaml")
