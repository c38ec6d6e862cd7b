"""Local stand-ins for the cloud, so nothing in the demo or the tests reaches AWS: Mosquitto
with TLS for AWS IoT Core (`broker`), moto's server for S3 and the IoT control plane
(`moto_server`), a small CA for the certificates (`pki`), and all three together (`stack`)."""
