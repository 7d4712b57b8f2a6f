"""``python -m bots.discord`` (run from the repository root)."""

from bots.discord.app import main

raise SystemExit(main())
