"""A mid-size supermarket: 12 aisles between front, middle and back cross-aisles.

Entrance front-left, produce along the left wall, bakery along the right wall, a chilled
wall along the back, two frozen aisles (11, 12) next to the checkouts. About 62 m x 46 m.
"""

from __future__ import annotations

from typing import Any

from store_layouts.generate.builder import LayoutBuilder
from store_layouts.model import TemperatureZone

WIDTH, HEIGHT = 62.0, 46.0
BACK_Y, MIDDLE_Y, FRONT_Y = 5.0, 21.5, 38.0  # the three cross-aisles
LEFT_X, RIGHT_X = 3.0, 59.0  # perimeter walkways (produce, bakery)
AISLE_XS = [9.0 + 4.0 * i for i in range(12)]  # 4 m pitch: 1.4 m gondola + 2.6 m aisle
HALF_PICK_YS = (13.25, 29.75)  # one pick point in the middle of each half-aisle
TILL_XS = [22.0 + 4.0 * i for i in range(6)]
TILL_Y, ENTRANCE_Y = 42.0, 45.0

# Aisle planogram: (back-left, back-right, front-left, front-right) categories, aisle 1 first.
AISLES: list[tuple[TemperatureZone, list[list[str]]]] = [
    ("ambient", [["water"], ["soft drinks"], ["beer and cider"], ["wine"]]),
    ("ambient", [["crisps"], ["nuts and dried fruit"], ["chocolate and sweets"], ["biscuits"]]),
    ("ambient", [["cereal"], ["coffee"], ["tea"], ["spreads"]]),
    ("ambient", [["pasta and rice"], ["sauces"], ["world foods"], ["oil and vinegar"]]),
    ("ambient", [["canned food"], ["soups"], ["spices and baking"], ["free from"]]),
    ("ambient", [["laundry"], ["dishwashing"], ["cleaning"], ["paper goods"]]),
    ("ambient", [["bin bags and foil"], ["kitchenware"], ["batteries and lighting"],
                 ["stationery"]]),
    ("ambient", [["oral care"], ["hair and body"], ["health"], ["beauty"]]),
    ("ambient", [["baby"], ["pet food"], ["seasonal"], ["party"]]),
    ("ambient", [["magazines"], ["toys"], ["crisps", "soft drinks"], ["water"]]),
    ("frozen", [["frozen vegetables"], ["frozen chips"], ["frozen fish"], ["frozen meals"]]),
    ("frozen", [["frozen pizza"], ["ice cream"], ["frozen desserts"], ["frozen bakery"]]),
]
# Chilled wall along the back, left to right, one shelf per 4 m bay.
BACK_WALL: list[list[str]] = [
    ["fresh juice", "sandwiches"], ["ready meals"], ["fresh pasta", "dips"], ["deli meats"],
    ["sausages and bacon"], ["chicken"], ["beef", "pork"], ["fresh fish", "seafood"],
    ["tofu and meat alternatives"], ["cheese"], ["yogurt", "cream"], ["butter", "eggs"],
    ["milk", "plant milk"],
]
BACK_WALL_XS = [7.0 + 4.0 * i for i in range(len(BACK_WALL))]
# Produce along the left wall (back to front) and bakery along the right wall.
PRODUCE: list[tuple[float, TemperatureZone, list[str]]] = [
    (10.0, "chilled", ["herbs"]), (16.0, "chilled", ["salad", "berries"]),
    (27.0, "ambient", ["vegetables"]), (33.0, "ambient", ["fruit"]),
    (41.0, "ambient", ["flowers"]),
]
BAKERY: list[tuple[float, list[str]]] = [
    (10.0, ["bread"]), (16.0, ["gluten free bread"]), (27.0, ["rolls and bagels"]),
    (33.0, ["pastries", "cakes"]),
]


def build() -> dict[str, Any]:
    b = LayoutBuilder("supermarket", "Demo supermarket (12 aisles)", "supermarket", WIDTH, HEIGHT)
    back = b.line(LEFT_X, BACK_Y, RIGHT_X, BACK_Y, "cross-aisle")
    middle = b.line(LEFT_X, MIDDLE_Y, RIGHT_X, MIDDLE_Y, "cross-aisle")
    front = b.line(LEFT_X, FRONT_Y, RIGHT_X, FRONT_Y, "cross-aisle")
    left = b.line(LEFT_X, BACK_Y, LEFT_X, ENTRANCE_Y, "walkway")
    right = b.line(RIGHT_X, BACK_Y, RIGHT_X, FRONT_Y, "walkway")
    b.zone("back-aisle", "Back cross-aisle (chilled wall)", [back])
    b.zone("middle-aisle", "Middle cross-aisle", [middle])
    b.zone("front-aisle", "Front cross-aisle", [front])
    b.zone("produce", "Produce walkway", [left])
    b.zone("bakery", "Bakery walkway", [right])

    span = (MIDDLE_Y - BACK_Y) - 3.0  # gondola length in one half-aisle
    for number, (x, (temperature, faces)) in enumerate(zip(AISLE_XS, AISLES, strict=True), 1):
        aisle = b.line(x, BACK_Y, x, FRONT_Y, "aisle")
        b.zone(f"aisle-{number:02d}", f"Aisle {number}", [aisle])
        for (half, y), side in _faces():
            cats = faces[half * 2 + (side == "right")]
            b.shelf(f"A{number:02d}-{'back' if half == 0 else 'front'}-{side}", x, y, side, cats,
                    temperature, span)
    for i, (x, cats) in enumerate(zip(BACK_WALL_XS, BACK_WALL, strict=True), 1):
        b.shelf(f"back-{i:02d}", x, BACK_Y, "up", cats, "chilled", 3.6)
    for i, (y, temperature, cats) in enumerate(PRODUCE, 1):
        b.shelf(f"produce-{i}", LEFT_X, y, "left", cats, temperature, 5.0)
    for i, (y, cats) in enumerate(BAKERY, 1):
        b.shelf(f"bakery-{i}", RIGHT_X, y, "right", cats, "ambient", 5.0)
    # A grab-and-go chiller by the entrance: sandwiches are stocked twice.
    b.shelf("grab-and-go", LEFT_X, FRONT_Y + 2.0, "right", ["sandwiches", "fresh juice"],
            "chilled", 2.0)

    tills = []
    for i, x in enumerate(TILL_XS, 1):
        tills.append(b.line(x, FRONT_Y, x, TILL_Y, "access"))
        b.checkout(f"till-{i}", x, TILL_Y, f"Till {i}")
    b.zone("checkouts", "Checkouts", tills)
    b.entrance("main", LEFT_X, ENTRANCE_Y, "Main entrance")
    return b.build()


def _faces() -> list[tuple[tuple[int, float], str]]:
    """(half index, pick y) x side, in planogram order."""
    return [((h, y), side) for h, y in enumerate(HALF_PICK_YS) for side in ("left", "right")]
