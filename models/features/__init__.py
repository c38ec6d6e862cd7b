"""Feature definitions shared by training and edge serving (one implementation each)."""
