"""The chain's analyses of shoppers (issue #15), back in the store: validated and stored from
the cloud link (`downlink.py`, `apply.py`), read for the staff insights endpoint
(`store.py`). Kept only for shoppers who consented to staff assistance; erased with them."""
