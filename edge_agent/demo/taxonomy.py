# ruff: noqa: E501 -- a data table: one category per line reads better than wrapped calls.
"""The demo catalog's departments and categories: the one list the catalog generator, the
simulator and the store layouts' planograms agree on (a test checks every layout places
every category).

`cycle_days` is how often a typical two-person household buys the category; shoppers scale
it by household size and personal taste. `zone` is the temperature zone its shelves are in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TemperatureZone = Literal["ambient", "chilled", "frozen"]
Allergen = Literal["milk", "gluten", "egg", "nuts", "peanuts", "soy", "fish", "shellfish", "sesame"]


@dataclass(frozen=True)
class Category:
    name: str
    department: str
    zone: TemperatureZone
    cycle_days: float
    price_range: tuple[float, float]
    variants: tuple[str, ...]
    allergens: tuple[Allergen, ...] = ()
    # Diet labels every product of the category satisfies (a product may add more).
    diets: tuple[str, ...] = ()
    meat: bool = False


def _c(name: str, department: str, zone: TemperatureZone, cycle: float, lo: float, hi: float,
       variants: str, allergens: tuple[Allergen, ...] = (), diets: tuple[str, ...] = (),
       meat: bool = False) -> Category:
    return Category(name, department, zone, cycle, (lo, hi), tuple(variants.split(", ")),
                    allergens, diets, meat)


_VEG = ("vegetarian", "vegan", "gluten_free", "lactose_free")
_VEGETARIAN_GF = ("vegetarian", "gluten_free")

CATEGORIES: tuple[Category, ...] = (
    # Produce
    _c("fruit", "produce", "ambient", 5, 0.5, 4.5,
       "bananas, apples, pears, oranges, grapes, mandarins, kiwis, mangoes", diets=_VEG),
    _c("berries", "produce", "chilled", 9, 2.0, 5.5,
       "strawberries, blueberries, raspberries, blackberries", diets=_VEG),
    _c("vegetables", "produce", "ambient", 5, 0.6, 3.5,
       "carrots, onions, potatoes, broccoli, peppers, courgettes, cucumbers, tomatoes",
       diets=_VEG),
    _c("salad", "produce", "chilled", 6, 1.0, 3.5,
       "mixed leaves, iceberg lettuce, rocket, spinach, baby leaf", diets=_VEG),
    _c("herbs", "produce", "chilled", 20, 0.8, 2.0, "basil, parsley, coriander, mint, chives",
       diets=_VEG),
    # Dairy and eggs
    _c("milk", "dairy", "chilled", 5, 0.9, 2.5,
       "whole milk, semi-skimmed milk, skimmed milk, organic milk", ("milk",),
       _VEGETARIAN_GF),
    _c("plant milk", "dairy", "chilled", 7, 1.4, 2.8, "oat drink, soy drink, almond drink",
       diets=("vegetarian", "vegan", "lactose_free")),
    _c("yogurt", "dairy", "chilled", 7, 0.8, 4.0,
       "natural yogurt, greek yogurt, fruit yogurt, kids yogurt", ("milk",), _VEGETARIAN_GF),
    _c("cheese", "dairy", "chilled", 12, 1.5, 7.0,
       "cheddar, mozzarella, gouda, brie, parmesan, feta", ("milk",), _VEGETARIAN_GF),
    _c("butter", "dairy", "chilled", 16, 1.5, 4.0, "salted butter, unsalted butter, spread",
       ("milk",), _VEGETARIAN_GF),
    _c("cream", "dairy", "chilled", 18, 0.9, 2.5, "single cream, double cream, sour cream",
       ("milk",), _VEGETARIAN_GF),
    _c("eggs", "dairy", "chilled", 9, 1.6, 4.0, "free range eggs, organic eggs, large eggs",
       ("egg",), ("vegetarian", "gluten_free", "lactose_free")),
    # Bakery
    _c("bread", "bakery", "ambient", 4, 1.0, 3.5,
       "white loaf, wholemeal loaf, sourdough, seeded loaf, rye bread", ("gluten",),
       ("vegetarian", "vegan", "lactose_free")),
    _c("gluten free bread", "bakery", "ambient", 6, 2.5, 4.0, "gluten free loaf, gluten free rolls",
       diets=("vegetarian", "vegan", "gluten_free", "lactose_free")),
    _c("rolls and bagels", "bakery", "ambient", 8, 1.0, 3.0, "bagels, brioche rolls, baguette",
       ("gluten", "egg"), ("vegetarian",)),
    _c("pastries", "bakery", "ambient", 10, 1.2, 4.0, "croissants, pain au chocolat, muffins",
       ("gluten", "milk", "egg"), ("vegetarian",)),
    _c("cakes", "bakery", "ambient", 21, 2.0, 8.0, "sponge cake, carrot cake, brownies",
       ("gluten", "milk", "egg"), ("vegetarian",)),
    # Meat and fish
    _c("chicken", "meat and fish", "chilled", 7, 3.0, 9.0,
       "chicken breast, chicken thighs, whole chicken, chicken drumsticks",
       diets=("gluten_free", "lactose_free"), meat=True),
    _c("beef", "meat and fish", "chilled", 12, 3.5, 14.0, "beef mince, steak, stewing beef",
       diets=("gluten_free", "lactose_free"), meat=True),
    _c("pork", "meat and fish", "chilled", 14, 2.5, 9.0, "pork chops, pork loin, pork mince",
       diets=("gluten_free", "lactose_free"), meat=True),
    _c("sausages and bacon", "meat and fish", "chilled", 10, 2.0, 5.0,
       "pork sausages, smoked bacon, chorizo", meat=True, diets=("lactose_free",)),
    _c("deli meats", "meat and fish", "chilled", 8, 1.5, 5.0, "ham, salami, turkey slices",
       diets=("gluten_free", "lactose_free"), meat=True),
    _c("fresh fish", "meat and fish", "chilled", 14, 4.0, 12.0, "salmon fillets, cod fillets, sea bass",
       ("fish",), ("gluten_free", "lactose_free"), meat=True),
    _c("seafood", "meat and fish", "chilled", 30, 4.0, 12.0, "king prawns, mussels, scallops",
       ("shellfish",), ("gluten_free", "lactose_free"), meat=True),
    _c("tofu and meat alternatives", "meat and fish", "chilled", 12, 2.0, 4.5,
       "tofu, tempeh, plant based mince, veggie burgers", ("soy",),
       ("vegetarian", "vegan", "lactose_free")),
    # Chilled ready food
    _c("ready meals", "chilled food", "chilled", 8, 2.5, 6.0,
       "lasagne, chicken curry, macaroni cheese, cottage pie", ("milk", "gluten"), meat=True),
    _c("fresh pasta", "chilled food", "chilled", 14, 1.8, 4.0, "tortellini, ravioli, gnocchi",
       ("gluten", "egg", "milk"), ("vegetarian",)),
    _c("dips", "chilled food", "chilled", 12, 1.0, 3.0, "hummus, guacamole, tzatziki",
       ("sesame",), ("vegetarian", "gluten_free")),
    _c("fresh juice", "chilled food", "chilled", 7, 1.5, 4.0,
       "orange juice, apple juice, smoothie", diets=_VEG),
    _c("sandwiches", "chilled food", "chilled", 6, 2.0, 4.5, "chicken sandwich, egg sandwich, wrap",
       ("gluten", "egg"), meat=True),
    # Frozen
    _c("frozen vegetables", "frozen", "frozen", 18, 1.0, 3.5, "peas, sweetcorn, mixed vegetables",
       diets=_VEG),
    _c("frozen chips", "frozen", "frozen", 16, 1.5, 3.5, "oven chips, potato wedges, hash browns",
       diets=_VEG),
    _c("frozen pizza", "frozen", "frozen", 14, 2.0, 5.5, "margherita pizza, pepperoni pizza",
       ("gluten", "milk"), meat=True),
    _c("ice cream", "frozen", "frozen", 18, 2.0, 6.0, "vanilla ice cream, chocolate ice cream, sorbet",
       ("milk", "egg"), ("vegetarian", "gluten_free")),
    _c("frozen fish", "frozen", "frozen", 21, 2.5, 7.0, "fish fingers, frozen salmon, breaded cod",
       ("fish", "gluten"), ("lactose_free",), meat=True),
    _c("frozen meals", "frozen", "frozen", 14, 2.5, 6.0, "frozen lasagne, frozen curry, dumplings",
       ("gluten", "milk"), meat=True),
    _c("frozen desserts", "frozen", "frozen", 30, 2.5, 6.0, "cheesecake, gateau, apple pie",
       ("gluten", "milk", "egg"), ("vegetarian",)),
    # Pantry
    _c("pasta and rice", "pantry", "ambient", 14, 0.8, 3.5,
       "spaghetti, penne, basmati rice, risotto rice, egg noodles", ("gluten",),
       ("vegetarian", "vegan", "lactose_free")),
    _c("cereal", "pantry", "ambient", 12, 1.5, 5.0, "corn flakes, muesli, granola, porridge oats",
       ("gluten",), ("vegetarian", "lactose_free")),
    _c("canned food", "pantry", "ambient", 14, 0.5, 2.5,
       "chopped tomatoes, baked beans, chickpeas, tuna, sweetcorn", diets=("gluten_free",)),
    _c("soups", "pantry", "ambient", 14, 1.0, 3.0, "tomato soup, chicken soup, lentil soup",
       ("milk",)),
    _c("sauces", "pantry", "ambient", 20, 1.0, 3.5, "pasta sauce, curry sauce, ketchup, mayonnaise",
       ("egg",), ("vegetarian",)),
    _c("oil and vinegar", "pantry", "ambient", 40, 2.0, 8.0, "olive oil, sunflower oil, balsamic vinegar",
       diets=_VEG),
    _c("spices and baking", "pantry", "ambient", 45, 0.8, 4.0,
       "flour, sugar, baking powder, black pepper, paprika", ("gluten",), ("vegetarian", "vegan")),
    _c("spreads", "pantry", "ambient", 21, 1.5, 4.5, "peanut butter, jam, honey, chocolate spread",
       ("peanuts", "nuts", "milk"), ("vegetarian",)),
    _c("coffee", "pantry", "ambient", 18, 2.5, 9.0, "ground coffee, coffee beans, instant coffee",
       diets=_VEG),
    _c("tea", "pantry", "ambient", 25, 1.5, 5.0, "black tea, green tea, herbal tea", diets=_VEG),
    # Snacks and drinks
    _c("crisps", "snacks", "ambient", 8, 1.0, 3.0, "salted crisps, tortilla chips, popcorn",
       diets=("vegetarian", "vegan")),
    _c("biscuits", "snacks", "ambient", 10, 0.8, 3.0, "digestives, chocolate biscuits, crackers",
       ("gluten", "milk"), ("vegetarian",)),
    _c("chocolate and sweets", "snacks", "ambient", 9, 0.8, 4.0,
       "milk chocolate, dark chocolate, gummy sweets", ("milk", "nuts"), ("vegetarian",)),
    _c("nuts and dried fruit", "snacks", "ambient", 20, 1.5, 5.0, "mixed nuts, almonds, raisins",
       ("nuts", "peanuts"), ("vegetarian", "vegan", "gluten_free")),
    _c("water", "drinks", "ambient", 7, 0.5, 3.0, "still water, sparkling water", diets=_VEG),
    _c("soft drinks", "drinks", "ambient", 8, 1.0, 4.0, "cola, lemonade, orange squash", diets=_VEG),
    _c("beer and cider", "drinks", "ambient", 10, 3.0, 12.0, "lager, ale, cider", ("gluten",),
       ("vegetarian", "vegan", "lactose_free")),
    _c("wine", "drinks", "ambient", 12, 5.0, 15.0, "red wine, white wine, rose wine",
       diets=("vegetarian", "gluten_free", "lactose_free")),
    # Household and personal care
    _c("laundry", "household", "ambient", 30, 4.0, 12.0,
       "laundry detergent, fabric conditioner, stain remover", diets=_VEG),
    _c("dishwashing", "household", "ambient", 28, 2.0, 9.0, "washing up liquid, dishwasher tablets",
       diets=_VEG),
    _c("cleaning", "household", "ambient", 35, 1.5, 5.0, "multi surface spray, bleach, sponges",
       diets=_VEG),
    _c("paper goods", "household", "ambient", 14, 2.0, 9.0, "toilet roll, kitchen roll, tissues",
       diets=_VEG),
    _c("bin bags and foil", "household", "ambient", 40, 1.5, 4.0, "bin bags, kitchen foil, cling film",
       diets=_VEG),
    _c("oral care", "personal care", "ambient", 35, 1.5, 6.0, "toothpaste, toothbrushes, mouthwash",
       diets=_VEG),
    _c("hair and body", "personal care", "ambient", 30, 2.0, 7.0, "shampoo, conditioner, shower gel",
       diets=_VEG),
    _c("baby", "baby", "ambient", 6, 3.0, 14.0, "nappies, baby wipes, baby food", diets=("vegetarian",)),
    _c("pet food", "pet", "ambient", 10, 1.5, 14.0, "dog food, cat food, cat litter", meat=True),
)

CATEGORY_BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
DEPARTMENTS: tuple[str, ...] = tuple(dict.fromkeys(c.department for c in CATEGORIES))
