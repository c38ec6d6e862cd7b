"""A small convenience store: four short aisles, several categories per shelf.

Entrance front-right next to the counter, chilled wall along the back, a freezer along the
right wall, a produce stand by the door. About 19 m x 14 m.
"""

from __future__ import annotations

from typing import Any

from store_layouts.generate.builder import LayoutBuilder

WIDTH, HEIGHT = 19.0, 14.0
BACK_Y, FRONT_Y = 2.0, 10.5
AISLE_XS = [2.0, 6.0, 10.0, 14.0]
RIGHT_X = 17.5
PICK_YS = (4.5, 8.0)
COUNTER_X, COUNTER_Y = 12.0, 12.5
ENTRANCE_Y = 13.5

# Per aisle: (back-left, back-right, front-left, front-right); aisle 1's left is the wall.
AISLES: list[list[list[str]]] = [
    [["laundry", "dishwashing", "cleaning"], ["paper goods", "bin bags and foil"],
     ["oral care", "hair and body"], ["baby", "pet food"]],
    [["pasta and rice", "sauces", "oil and vinegar"], ["canned food", "soups"],
     ["spices and baking", "spreads"], ["cereal", "coffee", "tea"]],
    [["bread", "gluten free bread", "rolls and bagels"], ["pastries", "cakes"],
     ["biscuits", "nuts and dried fruit"], ["crisps", "chocolate and sweets"]],
    [["water", "soft drinks"], ["beer and cider", "wine"], ["newspapers"], ["tobacco"]],
]
BACK_WALL: list[list[str]] = [
    ["milk", "plant milk", "cream"], ["yogurt", "butter", "eggs"], ["cheese", "deli meats"],
    ["chicken", "beef", "pork"], ["sausages and bacon", "fresh fish", "seafood"],
    ["tofu and meat alternatives", "dips"], ["ready meals", "fresh pasta"],
    ["fresh juice", "sandwiches"],
]
BACK_WALL_XS = [2.0 + 2.0 * i for i in range(len(BACK_WALL))]
FREEZER: list[tuple[float, list[str]]] = [
    (4.5, ["frozen vegetables", "frozen chips", "frozen pizza", "frozen fish"]),
    (8.0, ["ice cream", "frozen meals", "frozen desserts"]),
]


def build() -> dict[str, Any]:
    b = LayoutBuilder("convenience", "Demo convenience store", "convenience", WIDTH, HEIGHT)
    back = b.line(AISLE_XS[0], BACK_Y, RIGHT_X, BACK_Y, "cross-aisle")
    front = b.line(AISLE_XS[0], FRONT_Y, RIGHT_X, FRONT_Y, "cross-aisle")
    right = b.line(RIGHT_X, BACK_Y, RIGHT_X, ENTRANCE_Y, "walkway")
    b.zone("back-aisle", "Back aisle (chilled wall)", [back])
    b.zone("front-aisle", "Front aisle", [front])
    b.zone("freezer-aisle", "Freezer walkway", [right])
    for number, (x, faces) in enumerate(zip(AISLE_XS, AISLES, strict=True), 1):
        aisle = b.line(x, BACK_Y, x, FRONT_Y, "aisle")
        b.zone(f"aisle-{number}", f"Aisle {number}", [aisle])
        for i, (y, side) in enumerate((y, s) for y in PICK_YS for s in ("left", "right")):
            b.shelf(f"A{number}-{'back' if y == PICK_YS[0] else 'front'}-{side}", x, y, side,
                    faces[i], "ambient", 3.0)
    for i, (x, cats) in enumerate(zip(BACK_WALL_XS, BACK_WALL, strict=True), 1):
        b.shelf(f"chiller-{i}", x, BACK_Y, "up", cats, "chilled", 1.8)
    for i, (y, cats) in enumerate(FREEZER, 1):
        b.shelf(f"freezer-{i}", RIGHT_X, y, "right", cats, "frozen", 3.0)
    b.shelf("produce-stand", 16.0, FRONT_Y, "down", ["fruit", "vegetables"], "ambient", 2.0)
    b.shelf("produce-chiller", 16.0, FRONT_Y, "up", ["salad", "berries", "herbs"], "chilled", 2.0)
    counter = b.line(COUNTER_X, FRONT_Y, COUNTER_X, COUNTER_Y, "access")
    b.checkout("counter", COUNTER_X, COUNTER_Y, "Counter")
    b.zone("counter", "Counter queue", [counter])
    b.entrance("door", RIGHT_X, ENTRANCE_Y, "Door")
    return b.build()
