"""The store's master data — catalog, loyalty customers, consent, erasure — applied through
one path: the operator's `edge-agent import` and the cloud's downlink alike."""

from edge_agent.masterdata.apply import ApplyResult, apply_records
from models.masterdata.files import read_records
from models.masterdata.records import KINDS, MasterDataError, RowError

__all__ = ["KINDS", "ApplyResult", "MasterDataError", "RowError", "apply_records",
           "read_records"]
