"""The store simulator: demo shoppers' POS traffic plus shelf, zone, presence and kiosk streams
over MQTT, history back-fill, and replay of the Complete Journey dataset (`edge-agent simulate`).
"""
