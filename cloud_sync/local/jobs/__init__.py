"""The device side of AWS IoT Jobs, locally: a service inside moto's process that answers the
Jobs MQTT API (`$aws/things/{thing}/jobs/...`) on the local broker from moto's job records.

- `protocol`: topics, request parsing, the JSON shapes of responses and notifications;
- `views`: moto's executions in those shapes;
- `documents`: job documents, with `${aws:iot:s3-presigned-url:...}` placeholders presigned;
- `rollout`: the pace at which a job's executions are made available, and abort criteria;
- `lifecycle`: what happens to a job without a device asking (adoption, rollout, cancel,
  timeouts, abort, completion, counts);
- `executions`: the device's operations on its executions, over moto's objects;
- `service`: the MQTT side (paho over mutual TLS), the poll loop and notifications.

Nothing is imported here: `cloud_sync.local.moto_server` is used by processes that must not
load moto's models.
"""
