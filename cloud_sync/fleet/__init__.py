"""The fleet of stores as AWS IoT sees it: things, certificates and the store policy."""
