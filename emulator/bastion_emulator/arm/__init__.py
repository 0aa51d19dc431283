"""Azure Resource Manager as the emulator serves it: ``api`` (the routes) and ``validation`` (what ARM refuses)."""
