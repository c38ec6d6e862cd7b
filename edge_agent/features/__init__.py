"""Per-shopper feature state kept up to date as sales arrive (the models' own feature
definitions from `models.features`, applied incrementally at the edge)."""
