"""The Bastion data plane: ``app`` (the routes), ``policy``, ``relay``, ``sessions``, ``hosts`` (one listener each)."""
