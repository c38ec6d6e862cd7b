"""What the agent knows about a shopper: profile and consent, purchase timing, the shopping
list, insights for staff. Domain logic only; the HTTP routes call into it."""
