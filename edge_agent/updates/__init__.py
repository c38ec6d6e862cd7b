"""Model releases from the cloud: IoT Jobs in, verified bundles swapped in, health watched."""
