"""Cases (判责单): violations, responsibility shares, rulings and the penalties they produce."""
