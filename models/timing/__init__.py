"""Purchase timing per shopper x category: days until the next purchase, interval, urgency.

Features live in ``models.features.timing`` (shared with the edge); this package holds the
training data replay, the quantile model, its evaluation and the serving-side maths.
"""
