"""The one IoT policy every store's certificate carries, written with policy variables so a
store can reach only its own topics. The local broker's ACL (`cloud_sync.local`) and the
CloudFormation template (`cloud_sync/infrastructure/`) are checked against this document."""

from __future__ import annotations

import json
from typing import Any

from cloud_sync.topics import command_prefix, jobs_prefix, telemetry_prefix

STORE_POLICY_NAME = "instore-store"
THING = "${iot:Connection.Thing.ThingName}"


def store_policy_document(region: str, account: str, partition: str = "aws") -> dict[str, Any]:
    arn = f"arn:{partition}:iot:{region}:{account}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {   # The client id must be the thing name: one connection per store.
                "Effect": "Allow", "Action": "iot:Connect",
                "Resource": f"{arn}:client/{THING}",
            },
            {
                "Effect": "Allow", "Action": "iot:Publish",
                "Resource": [f"{arn}:topic/{telemetry_prefix(THING)}*",
                             f"{arn}:topic/{jobs_prefix(THING)}*"],
            },
            {
                "Effect": "Allow", "Action": "iot:Subscribe",
                "Resource": [f"{arn}:topicfilter/{command_prefix(THING)}*",
                             f"{arn}:topicfilter/{jobs_prefix(THING)}*"],
            },
            {
                "Effect": "Allow", "Action": "iot:Receive",
                "Resource": [f"{arn}:topic/{command_prefix(THING)}*",
                             f"{arn}:topic/{jobs_prefix(THING)}*"],
            },
        ],
    }


def store_policy_json(region: str, account: str, partition: str = "aws") -> str:
    return json.dumps(store_policy_document(region, account, partition), indent=2)
