"""The words a shopper or a member of staff reads: counts with the right plural, how long
ago, and category names that read as nouns in a sentence ("You buy baby products ...")."""

from __future__ import annotations

# Categories named for a shelf rather than for what is on it. "You buy cleaning about every
# 30 days" reads as a mistake; the rest of the catalog's categories are nouns already.
# The category itself stays the key everywhere else (routes, layouts, the API's fields).
CATEGORY_NOUNS = {
    "baby": "baby products",  # nappies and wipes as well as baby food
    "cleaning": "cleaning products",
    "dishwashing": "dishwashing products",
    "laundry": "laundry products",
    "oral care": "oral care products",
    "hair and body": "hair and body care",
    "spices and baking": "spices and baking goods",
}


def category_noun(category: str) -> str:
    """`category` as it reads in a sentence."""
    return CATEGORY_NOUNS.get(category, category)


def count(n: int, singular: str, plural: str | None = None) -> str:
    """`1 stop`, `3 stops`, `0 stops`."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def every(days: int) -> str:
    """How often: `every day`, `every 3 days`."""
    return "every day" if days <= 1 else f"every {days} days"


def ago(days: int) -> str:
    """How long ago, in whole days: `today`, `yesterday`, `5 days ago`."""
    if days <= 0:
        return "today"
    return "yesterday" if days == 1 else f"{days} days ago"
