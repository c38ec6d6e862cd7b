"""HTTP routes, a module per audience or concern."""

# Every versioned route is under this prefix; it is part of each router's own prefix so the
# route templates (metrics labels, OpenAPI) are the full paths.
API_PREFIX = "/v1"

# Handlers that only read (SQLite, ONNX, a route search: milliseconds of CPU) are `async def`
# and run on the event loop: under the GIL a worker thread adds no parallelism, only a hop
# to the thread pool and back per call, which cost more than many of the handlers
# themselves. Handlers that wait on something else (feedback waits for the ingestion
# writer's commit; loading a bundle takes seconds) stay plain `def`, in the thread pool.
