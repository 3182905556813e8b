"""Words both sides of the boundary need: what is protected, hidden, readable and why (a leaf: imports nothing of corral's)."""
