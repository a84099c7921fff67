"""Demo data: a realistic small world (Chinese names, the shipped rulebook, months of cases)."""
