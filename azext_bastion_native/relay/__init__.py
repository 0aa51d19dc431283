"""The asyncio relay engine: local TCP connections or stdio <-> Bastion websockets (no azure.cli imports)."""
