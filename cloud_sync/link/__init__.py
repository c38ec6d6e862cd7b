"""The store's side of the store–cloud link: its credentials and its MQTT 5 connection."""
