"""The models the agent serves: loaded from signed bundles, smoke-tested, hot-swapped."""
