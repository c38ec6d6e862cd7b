"""A shopper's profile (consent, diet) and features, read in one go for a request."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from edge_agent.features.shopper import ShopperFeatures
from edge_agent.features.store import load_stamped_features


class ShopperNotFound(LookupError):
    pass


class NoConsent(PermissionError):
    pass


@dataclass(frozen=True)
class Profile:
    customer_id: str
    loyalty_number: str | None
    household_size: int | None
    consent_personalization: bool
    consent_staff_assist: bool
    dietary_restrictions: tuple[str, ...]
    allergens: tuple[str, ...]
    features: ShopperFeatures | None  # None: no sale seen yet
    features_stamp: str | None = None  # changes whenever a sale is applied to `features`


_PROFILE_COLUMNS = ("customer_id, loyalty_number, household_size, consent_personalization,"
                    " consent_staff_assist, dietary_restrictions, allergens")


def load_profile(conn: sqlite3.Connection, customer_id: str) -> Profile:
    """The profile of a customer id of the loyalty system (the store's own records)."""
    row = conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM customers WHERE customer_id = ?",
                       (customer_id,)).fetchone()
    if row is None:
        raise ShopperNotFound(customer_id)
    return _profile(conn, row)


def load_device_profile(conn: sqlite3.Connection, shopper_ref: str) -> Profile:
    """The profile of the opaque id devices know a shopper by (`shopper_ref`, from a
    loyalty-number lookup): a device never sees, nor can guess, the customer id."""
    row = conn.execute(f"SELECT {_PROFILE_COLUMNS} FROM customers WHERE shopper_ref = ?",
                       (shopper_ref,)).fetchone()
    if row is None:
        raise ShopperNotFound(shopper_ref)
    return _profile(conn, row)


def customer_for_device(conn: sqlite3.Connection, shopper_ref: str) -> str | None:
    """The customer id behind a device's opaque id; None for one this store does not know."""
    row = conn.execute("SELECT customer_id FROM customers WHERE shopper_ref = ?",
                       (shopper_ref,)).fetchone()
    return None if row is None else str(row[0])


def device_ref_for_loyalty_number(conn: sqlite3.Connection, loyalty_number: str) -> str:
    """The opaque id a device uses for the shopper holding this loyalty card."""
    row = conn.execute("SELECT shopper_ref FROM customers WHERE loyalty_number = ?",
                       (loyalty_number,)).fetchone()
    if row is None:
        raise ShopperNotFound(loyalty_number)
    return str(row[0])


def _profile(conn: sqlite3.Connection, row: sqlite3.Row | tuple) -> Profile:
    stamped = load_stamped_features(conn, row[0])
    return Profile(row[0], row[1], row[2], bool(row[3]), bool(row[4]),
                   tuple(json.loads(row[5] or "[]")), tuple(json.loads(row[6] or "[]")),
                   stamped[0] if stamped else None, stamped[1] if stamped else None)


def require_personalization(profile: Profile) -> None:
    if not profile.consent_personalization:
        raise NoConsent("this shopper has not consented to personalization")


def require_staff_assist(profile: Profile) -> None:
    if not profile.consent_staff_assist:
        raise NoConsent("this shopper has not consented to staff assistance")
