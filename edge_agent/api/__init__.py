"""The agent's HTTP service (FastAPI): kiosks, displays, staff handhelds and admin."""
