"""The bundled Discord bot: answers in a character's voice, streamed live from voice-bridge.

Run ``python -m bots.discord`` (or ``voice-bridge-discord``). Layers, outside in:

* :mod:`~bots.discord.app` — start-up checks (PyNaCl, DAVE, libopus), the bot, ``main``;
* :mod:`~bots.discord.cog` — the hybrid commands; Discord objects stop here;
* :mod:`~bots.discord.session` — :class:`GuildSession`: per-guild state and all command logic;
* :mod:`~bots.discord.link` — the guild's bridge session: reconnects, routing, backpressure;
* :mod:`~bots.discord.source` — :class:`StreamSource`, the ``discord.AudioSource``;
* :mod:`~bots.discord.llm` — OpenAI-compatible streaming client, SSE parser, chat history;
* :mod:`~bots.discord.testing` — offline stand-ins for Discord voice and the LLM.

Nothing is imported here: ``python -m bots.discord.settings`` and the tests import only the
module they need.
"""
