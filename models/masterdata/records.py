"""What each kind of master-data record must hold, checked before anything is written.

Records come from CSV (every value a string), JSON lines and downlink messages, so values
are coerced where the intent is plain ("4.99" is a price, "yes" is consent) and refused
otherwise, with the row and the field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from models.events import MAX_ID_LENGTH

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^\S(.*\S)?$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
# Names from a chain's systems are short; a bound keeps a broken export from filling pages.
TAG_MAX = 40
TAGS_MAX = 30
TRUE_WORDS = frozenset({"1", "true", "yes", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", ""})


def _tags(value: Any) -> Any:
    """`gluten;milk` (CSV) or a JSON list; tags are lower case, without blanks."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(";")
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return [part.strip().lower() for part in value if part.strip()]
    return value  # not a list of words: validation names the field


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


Tags = Annotated[list[Annotated[str, Field(max_length=TAG_MAX)]],
                 Field(max_length=TAGS_MAX), BeforeValidator(_tags)]
Flag = Annotated[bool, BeforeValidator(_flag)]


def _optional(kind: Any) -> Any:
    return Annotated[kind | None, BeforeValidator(_blank_is_none)]


class _Record(BaseModel):
    # Unknown columns are refused: a misspelt "allergen" column must not be silently lost.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class ProductRecord(_Record):
    product_id: Id
    name: Text
    category: Annotated[str, Field(min_length=1, max_length=80)]
    brand: _optional(Text) = None
    department: _optional(Text) = None
    price: _optional(Annotated[float, Field(ge=0, le=100_000)]) = None
    size: _optional(Annotated[str, Field(max_length=40)]) = None
    temperature_zone: Literal["ambient", "chilled", "frozen"] = "ambient"
    allergens: Tags = Field(default_factory=list)
    diets: Tags = Field(default_factory=list)
    active: Flag = True


class CustomerRecord(_Record):
    customer_id: Id
    loyalty_number: _optional(Annotated[str, Field(min_length=4, max_length=32,
                                                   pattern=r"^[A-Za-z0-9-]+$")]) = None
    household_size: _optional(Annotated[int, Field(ge=1, le=20)]) = None
    consent_personalization: Flag = False
    consent_staff_assist: Flag = False
    dietary_restrictions: Tags = Field(default_factory=list)
    allergens: Tags = Field(default_factory=list)


class ConsentRecord(_Record):
    """A change of consent: only what is given changes."""

    customer_id: Id
    consent_personalization: _optional(Flag) = None
    consent_staff_assist: _optional(Flag) = None


class ErasureRecord(_Record):
    customer_id: Id


Kind = Literal["catalog", "customers", "consent", "erasure"]
KINDS: dict[str, type[_Record]] = {"catalog": ProductRecord, "customers": CustomerRecord,
                                   "consent": ConsentRecord, "erasure": ErasureRecord}


@dataclass(frozen=True)
class RowError:
    row: int  # the file's line number (or the message's record index)
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, field '{self.field}': {self.message}"


class MasterDataError(ValueError):
    """The records were refused, and nothing was changed."""

    # Enough to fix a file without drowning the operator in one mistake repeated.
    SHOWN = 20

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:self.SHOWN])
        more = f" (and {len(errors) - self.SHOWN} more)" if len(errors) > self.SHOWN else ""
        super().__init__(f"{len(errors)} invalid record(s), nothing changed: {shown}{more}")


def validate(kind: str, rows: list[tuple[int, dict[str, Any]]]) -> list[_Record]:
    """Every row checked; MasterDataError naming each bad row and field, or the records."""
    model = KINDS[kind]
    records, errors = [], []
    seen: dict[str, int] = {}
    for row, values in rows:
        try:
            record = model.model_validate(values)
        except ValidationError as exc:
            errors.extend(RowError(row, ".".join(str(p) for p in err["loc"]) or "record",
                                   err["msg"]) for err in exc.errors(include_url=False))
            continue
        key_field = "product_id" if kind == "catalog" else "customer_id"
        key = getattr(record, key_field)
        if key in seen:
            errors.append(RowError(row, key_field, f"{key!r} is also on row {seen[key]}"))
        seen[key] = row
        records.append(record)
    if errors:
        raise MasterDataError(errors)
    return records
