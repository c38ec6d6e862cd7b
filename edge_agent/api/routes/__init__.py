"""HTTP routes, a module per audience or concern."""

# Every versioned route is under this prefix; it is part of each router's own prefix so the
# route templates (metrics labels, OpenAPI) are the full paths.
API_PREFIX = "/v1"
