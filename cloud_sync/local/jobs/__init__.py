"""The device side of AWS IoT Jobs, locally: a service inside moto's process that answers the
Jobs MQTT API (`$aws/things/{thing}/jobs/...`) on the local broker from moto's job records.

- `protocol`: topics, request parsing, the JSON shapes of responses and notifications;
- `documents`: job documents, with `${aws:iot:s3-presigned-url:...}` placeholders presigned;
- `rollout`: the pace at which a job's executions are made available, and abort criteria;
- `executions`: the execution state machine over moto's `FakeJob`/`FakeJobExecution` objects;
- `service`: the MQTT side (paho over mutual TLS), the poll loop and notifications.

Kept free of imports here: `cloud_sync.local.moto_server` is imported by clients that must not
load moto.
"""
