"""``python -m bastion_emulator serve --state-dir DIR`` / ``az-login --state-dir DIR``."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bastion_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator in the foreground until SIGTERM/SIGINT")
    serve.add_argument("--state-dir", required=True, type=Path)
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (see ready.json)")
    serve.add_argument("--seed", help="seed JSON (default: the packaged default_seed.json)")
    serve.add_argument("--lro-seconds", type=float, default=0.2, help="how long long-running operations take")
    serve.add_argument("--log-level", default="INFO")
    login = commands.add_parser("az-login", help="register the emulator as a cloud in AZURE_CONFIG_DIR and log in")
    login.add_argument("--state-dir", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.command == "serve":
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
        from .server import serve as run_server  # pylint: disable=import-outside-toplevel
        asyncio.run(run_server(args.state_dir, port=args.port, seed=args.seed, lro_seconds=args.lro_seconds))
        return 0
    from .testing.az_login import az_login, export_lines  # pylint: disable=import-outside-toplevel
    try:
        additions = az_login(args.state_dir)
    except (RuntimeError, OSError) as exc:
        print(f"az-login failed: {exc}", file=sys.stderr)
        return 1
    print(export_lines(additions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
