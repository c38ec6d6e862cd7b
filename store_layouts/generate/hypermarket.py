"""A large hypermarket: six blocks of aisles (3 across x 2 deep) inside a racetrack.

Two entrances at the front corners, 16 tills along the front, produce along the left wall,
a long chilled wall at the back, bakery along the right wall, a frozen block, drinks and
non-food blocks. Big categories fill several shelves, some in two places (the planner picks
the better one). About 150 m x 100 m.
"""

from __future__ import annotations

from typing import Any

from store_layouts.generate.builder import LayoutBuilder
from store_layouts.model import TemperatureZone

WIDTH, HEIGHT = 150.0, 100.0
BACK_Y, ALLEY_Y, FRONT_Y = 6.0, 50.0, 86.0  # back walkway, action alley, front walkway
LEFT_X, RIGHT_X = 4.0, 146.0
SPLIT_XS = (52.0, 98.0)  # walkways between the block columns
BLOCK_XS = ((8.0, 48.0), (56.0, 94.0), (102.0, 142.0))
AISLE_PITCH_M = 4.5  # 1.5 m gondola + 3 m aisle: wider aisles for big trolleys
ROW_PICK_YS = ((14.0, 28.0, 42.0), (58.0, 68.0, 78.0))  # pick points per aisle, back / front row
TILL_XS = [38.0 + 5.0 * i for i in range(16)]
TILL_Y, ENTRANCE_Y = 92.0, 98.0

Fill = list[tuple[str, int]]  # (category, shelf faces); 2 faces = both sides of one pick point
# What each block holds, filled aisle by aisle, pick point by pick point, left face first.
BLOCKS: dict[tuple[int, int], tuple[TemperatureZone, Fill]] = {
    (0, 0): ("ambient", [
        ("pasta and rice", 4), ("sauces", 4), ("canned food", 4), ("soups", 2),
        ("oil and vinegar", 2), ("spices and baking", 4), ("world foods", 6),
        ("asian foods", 2), ("mexican foods", 2), ("indian foods", 2), ("free from", 4),
        ("cereal", 4), ("spreads", 2), ("coffee", 4), ("tea", 2), ("home baking", 2),
        ("kosher and halal", 2), ("organic pantry", 2)]),
    (0, 1): ("ambient", [
        ("crisps", 4), ("nuts and dried fruit", 2), ("chocolate and sweets", 4),
        ("biscuits", 4), ("confectionery gifts", 2), ("water", 4), ("soft drinks", 6),
        ("energy drinks", 2), ("squash and cordials", 2), ("mixers", 2),
        ("beer and cider", 6), ("wine", 8), ("spirits", 4), ("sports nutrition", 2)]),
    (1, 0): ("frozen", [
        ("frozen vegetables", 4), ("frozen chips", 2), ("frozen pizza", 4), ("ice cream", 4),
        ("frozen fish", 2), ("frozen meals", 4), ("frozen desserts", 2), ("frozen bakery", 2),
        ("frozen vegetarian", 2), ("frozen poultry", 2), ("ice", 2)]),
    (1, 1): ("ambient", [
        ("laundry", 4), ("dishwashing", 2), ("cleaning", 4), ("paper goods", 4),
        ("bin bags and foil", 2), ("oral care", 2), ("hair and body", 4), ("health", 4),
        ("beauty", 4), ("baby", 6), ("pet food", 6), ("pet accessories", 2)]),
    (2, 0): ("ambient", [
        ("small appliances", 4), ("cookware", 4), ("tableware", 4), ("storage", 2),
        ("bedding", 4), ("towels", 2), ("lighting", 2), ("batteries", 2), ("electronics", 6),
        ("phones", 2), ("video games", 4), ("books", 4), ("stationery", 4)]),
    (2, 1): ("ambient", [
        ("toys", 6), ("party", 2), ("seasonal", 4), ("garden", 4), ("diy", 4),
        ("car care", 2), ("sports", 4), ("clothing", 8), ("shoes", 2), ("luggage", 2)]),
}
# The back wall, left to right: chilled, one face per 4 m bay. Milk is at both ends.
BACK_WALL_XS = [8.0 + 4.0 * i for i in range(35)]
BACK_WALL: list[str] = [
    "milk", "plant milk", "cream", "butter", "eggs", "yogurt", "yogurt", "chilled desserts",
    "cheese", "cheese", "deli meats", "olives and antipasti", "sausages and bacon", "chicken",
    "chicken", "beef", "pork", "lamb", "fresh fish", "seafood", "tofu and meat alternatives",
    "ready meals", "ready meals", "fresh pasta", "pizza and garlic bread", "dips",
    "fresh juice", "sandwiches", "salads to go", "milk",
]
PRODUCE: list[tuple[float, TemperatureZone, str]] = [  # left wall, back to front
    (12.0, "chilled", "herbs"), (18.0, "chilled", "salad"), (24.0, "chilled", "berries"),
    (32.0, "chilled", "prepared vegetables"), (40.0, "ambient", "vegetables"),
    (58.0, "ambient", "vegetables"), (64.0, "ambient", "fruit"), (72.0, "ambient", "fruit"),
    (80.0, "ambient", "flowers"),
]
BAKERY: list[tuple[float, str]] = [  # right wall, back to front
    (14.0, "bread"), (20.0, "bread"), (26.0, "gluten free bread"), (34.0, "rolls and bagels"),
    (42.0, "pastries"), (58.0, "cakes"), (66.0, "in-store bakery"), (74.0, "celebration cakes"),
]


def build() -> dict[str, Any]:
    b = LayoutBuilder("hypermarket", "Demo hypermarket (six blocks)", "hypermarket",
                      WIDTH, HEIGHT)
    for zone_id, name, y in (("back-walkway", "Back walkway (chilled wall)", BACK_Y),
                             ("action-alley", "Action alley", ALLEY_Y),
                             ("front-walkway", "Front walkway", FRONT_Y)):
        b.zone(zone_id, name, [b.line(LEFT_X, y, RIGHT_X, y, "cross-aisle")])
    b.zone("produce", "Produce walkway", [b.line(LEFT_X, BACK_Y, LEFT_X, ENTRANCE_Y, "walkway")])
    b.zone("bakery", "Bakery walkway", [b.line(RIGHT_X, BACK_Y, RIGHT_X, ENTRANCE_Y, "walkway")])
    for i, x in enumerate(SPLIT_XS, 1):
        b.zone(f"split-{i}", f"Walkway between blocks {i} and {i + 1}",
               [b.line(x, BACK_Y, x, FRONT_Y, "walkway")])
    for (col, row), (temperature, fill) in BLOCKS.items():
        _block(b, col, row, temperature, fill)
    for i, (x, cat) in enumerate(zip(BACK_WALL_XS, BACK_WALL, strict=False), 1):
        b.shelf(f"back-{i:02d}", x, BACK_Y, "up", [cat], "chilled", 3.6)
    for i, (y, temperature, cat) in enumerate(PRODUCE, 1):
        b.shelf(f"produce-{i}", LEFT_X, y, "left", [cat], temperature, 5.0)
    for i, (y, cat) in enumerate(BAKERY, 1):
        b.shelf(f"bakery-{i}", RIGHT_X, y, "right", [cat], "ambient", 5.0)
    # Promotions by the entrances stock fast movers a second time.
    b.shelf("promo-west", LEFT_X, FRONT_Y + 4.0, "right", ["water", "soft drinks"],
            "ambient", 3.0)
    b.shelf("promo-east", RIGHT_X, FRONT_Y + 4.0, "left", ["beer and cider", "crisps"],
            "ambient", 3.0)
    tills = []
    for i, x in enumerate(TILL_XS, 1):
        tills.append(b.line(x, FRONT_Y, x, TILL_Y, "access"))
        b.checkout(f"till-{i:02d}", x, TILL_Y, f"Till {i}")
    b.zone("checkouts", "Checkouts", tills)
    b.entrance("west", LEFT_X, ENTRANCE_Y, "West entrance")
    b.entrance("east", RIGHT_X, ENTRANCE_Y, "East entrance")
    return b.build()


def _block(b: LayoutBuilder, col: int, row: int, temperature: TemperatureZone,
           fill: Fill) -> None:
    x0, x1 = BLOCK_XS[col]
    y0, y1 = (BACK_Y, ALLEY_Y) if row == 0 else (ALLEY_Y, FRONT_Y)
    pick_ys = ROW_PICK_YS[row]
    aisle_xs = []
    x = x0 + 2.0
    while x <= x1 - 2.0:
        aisle_xs.append(x)
        x += AISLE_PITCH_M
    slots = [(ax, y, side) for ax in aisle_xs for y in pick_ys for side in ("left", "right")]
    queue = [cat for cat, faces in fill for _ in range(faces)]
    if len(queue) > len(slots):
        raise ValueError(f"block {col},{row}: {len(queue)} faces for {len(slots)} slots")
    span = (y1 - y0 - 4.0) / len(pick_ys)
    for number, ax in enumerate(aisle_xs, 1):
        aisle_id = f"B{col + 1}{row + 1}-{number:02d}"
        b.zone(f"aisle-{aisle_id}", f"Aisle {aisle_id}", [b.line(ax, y0, ax, y1, "aisle")])
    for (ax, y, side), cat in zip(slots, queue, strict=False):
        number = aisle_xs.index(ax) + 1
        b.shelf(f"B{col + 1}{row + 1}-{number:02d}-{pick_ys.index(y) + 1}-{side}", ax, y, side,
                [cat], temperature, span)
