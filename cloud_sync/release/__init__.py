"""Signed model releases and their staged rollout over AWS IoT Jobs (docs/releases.md).

- `document`: the job document and status details, the contract with the edge updater;
- `spec`, `record`: a release's declarative rollout spec and its state (``release.json``);
- `waves`: which stores are in which wave; `decide`: the controller's pure decision;
- `controller`: create, promote, abort, rollback, watch over boto3 (S3 and IoT);
- `kms_signer`: the production :class:`~models.bundle.signing.Signer`, an AWS KMS key.
"""
