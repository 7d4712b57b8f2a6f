"""The commands as Discord delivers them, not as Python calls them.

``test_cog.py`` calls each command's callback with a stand-in context, so it cannot see
how discord.py registers the slash commands, parses a prefix message or wraps an error. Here the
bot is :class:`VoiceBot`, built as ``app.main`` builds it and logged in the way ``bot.run`` does
(``login`` runs ``setup_hook``: the cog, the command sync, the service check), with Discord's HTTP
API replaced by :class:`FakeDiscordHTTP` (any other request fails the test); only the gateway
connection is left out. Messages and interactions are real discord.py objects made from the raw gateway
payloads, on the bot's own ``ConnectionState``, so the prefix (``!`` or an @mention), the argument
parsing, the checks and the error wrapping are discord.py's own.

The guild session is :class:`RecordingSession`: a real :class:`GuildSession` that records the
calls that would need the bridge, a voice connection or the LLM, so the tests can assert what
each handler received after parsing. ``/pitch`` runs for real (it only stores the value until a
bridge connection exists), so its conversion is checked end to end.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bots.discord import app as app_module
from bots.discord import cog as cog_module
from bots.discord.errors import NotInVoice
from bots.discord.session import GuildSession, Request
from bots.discord.testing import RecordingVoiceClient
from tests.discord.conftest import discord_settings

COMMANDS = ["join", "leave", "speak", "say", "stop", "voice", "pitch"]
BOT_ID, APP_ID, OWNER_ID = 9001, 9002, 9003
GUILD, TEXT, LOUNGE, LOCKED = 500, 501, 502, 503
ANN, OTHER_BOT = 600, 601
TIMESTAMP = "2026-01-01T00:00:00+00:00"
_ids = itertools.count(10_000)


# ----------------------------------------------------------------------------- raw payloads
def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": None, "avatar": None, "bot": bot}


def member_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "user": user_payload(user_id, name, bot=bot),
        "roles": [],
        "joined_at": TIMESTAMP,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
    }


def message_payload(content: str, *, author: dict[str, Any], channel_id: int, guild_id: int | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(next(_ids)),
        "channel_id": str(channel_id),
        "author": author,
        "content": content,
        "timestamp": TIMESTAMP,
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
        data["member"] = {key: value for key, value in member_payload(0, "").items() if key != "user"}
    return data


def guild_payload(*, in_voice: int | None = None) -> dict[str, Any]:
    """A guild as GUILD_CREATE sends it: a text channel, a voice channel everyone may use, one
    where @everyone may not connect, Ann and the bot; Ann sits in ``in_voice`` if given."""
    everyone = discord.Permissions.text() | discord.Permissions.voice() | discord.Permissions(view_channel=True)
    no_connect = discord.Permissions(connect=True, speak=True)
    voice_states = []
    if in_voice is not None:
        voice_states.append(
            {
                "user_id": str(ANN),
                "channel_id": str(in_voice),
                "session_id": "s",
                "deaf": False,
                "mute": False,
                "self_deaf": False,
                "self_mute": False,
                "self_video": False,
                "suppress": False,
                "request_to_speak_timestamp": None,
            }
        )
    voice_channel = {"type": 2, "bitrate": 64000, "user_limit": 0, "position": 1}
    return {
        "id": str(GUILD),
        "name": "test guild",
        "owner_id": str(OWNER_ID),
        "member_count": 2,
        "roles": [
            {
                "id": str(GUILD),  # @everyone has the guild's id
                "name": "@everyone",
                "permissions": str(everyone.value),
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
            }
        ],
        "channels": [
            {"id": str(TEXT), "type": 0, "name": "general", "position": 0, "permission_overwrites": []},
            {**voice_channel, "id": str(LOUNGE), "name": "lounge", "permission_overwrites": []},
            {
                **voice_channel,
                "id": str(LOCKED),
                "name": "locked",
                "permission_overwrites": [{"id": str(GUILD), "type": 0, "allow": "0", "deny": str(no_connect.value)}],
            },
        ],
        "members": [member_payload(ANN, "ann"), member_payload(BOT_ID, "joe", bot=True)],
        "voice_states": voice_states,
    }


# ----------------------------------------------------------------------------- Discord's API, faked
class FakeDiscordHTTP:
    """The few REST calls the bot makes, answered offline and recorded.

    Installed on the bot's own ``HTTPClient`` (and, for interactions, as the webhook adapter), so
    everything above it (``login``, ``tree.sync``, ``Messageable.send``, interaction responses)
    is discord.py's real code. Any other request raises, so a test cannot reach the network.
    """

    def __init__(self) -> None:
        self.global_syncs: list[list[dict[str, Any]]] = []
        self.guild_syncs: list[tuple[int, list[dict[str, Any]]]] = []
        self.sent: list[tuple[int, dict[str, Any]]] = []  # (channel id, message payload)
        self.responses: list[tuple[str, dict[str, Any] | None]] = []  # ("defer" | "message" | "followup", payload)
        self.sync_error: Exception | None = None

    def install(self, bot: commands.Bot) -> None:
        http = bot.http
        http.static_login = self.static_login  # type: ignore[method-assign]
        http.application_info = self.application_info  # type: ignore[method-assign]
        http.bulk_upsert_global_commands = self.bulk_upsert_global_commands  # type: ignore[method-assign]
        http.bulk_upsert_guild_commands = self.bulk_upsert_guild_commands  # type: ignore[method-assign]
        http.send_message = self.send_message  # type: ignore[method-assign]
        http.request = self.unexpected  # type: ignore[method-assign]

    async def unexpected(self, route: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"unexpected Discord API call: {route.method} {route.path}")

    async def static_login(self, token: str) -> dict[str, Any]:
        return user_payload(BOT_ID, "joe", bot=True)

    async def application_info(self) -> dict[str, Any]:
        return {
            "id": str(APP_ID),
            "name": "joe",
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "owner": user_payload(OWNER_ID, "owner"),
        }

    def _synced(self, payload: list[dict[str, Any]], guild_id: int | None = None) -> list[dict[str, Any]]:
        if self.sync_error is not None:
            raise self.sync_error
        extra = {"guild_id": str(guild_id)} if guild_id is not None else {}
        return [
            {**command, "id": str(next(_ids)), "application_id": str(APP_ID), "version": "1", **extra}
            for command in payload
        ]

    async def bulk_upsert_global_commands(self, application_id: int, payload: list[dict[str, Any]]) -> Any:
        assert int(application_id) == APP_ID
        self.global_syncs.append(payload)
        return self._synced(payload)

    async def bulk_upsert_guild_commands(self, application_id: int, guild_id: int, payload: list[dict[str, Any]]) -> Any:
        assert int(application_id) == APP_ID
        self.guild_syncs.append((int(guild_id), payload))
        return self._synced(payload, int(guild_id))

    async def send_message(self, channel_id: int, *, params: Any) -> dict[str, Any]:
        self.sent.append((int(channel_id), params.payload))
        return self.bot_message(channel_id, params.payload.get("content", ""))

    @staticmethod
    def bot_message(channel_id: int, content: str) -> dict[str, Any]:
        author = user_payload(BOT_ID, "joe", bot=True)
        return message_payload(content, author=author, channel_id=channel_id, guild_id=None)

    def texts(self, channel_id: int | None = None) -> list[str]:
        return [payload.get("content", "") for channel, payload in self.sent if channel_id in (None, channel)]


class FakeWebhookAdapter(AsyncWebhookAdapter):
    """Interaction responses and follow-ups (discord.py sends them through the webhook adapter)."""

    def __init__(self, http: FakeDiscordHTTP) -> None:
        super().__init__()
        self.http = http

    async def request(self, route: Any, session: Any = None, *, payload: Any = None, **kwargs: Any) -> Any:
        if route.method == "POST" and route.path.endswith("/callback"):  # the interaction's first response
            answer: dict[str, Any] = {"interaction": {"id": str(route.webhook_id), "type": 2}}
            if payload["type"] == 5:  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
                self.http.responses.append(("defer", None))
            else:
                assert payload["type"] == 4, payload  # CHANNEL_MESSAGE_WITH_SOURCE
                self.http.responses.append(("message", payload["data"]))
                message = FakeDiscordHTTP.bot_message(TEXT, payload["data"].get("content", ""))
                answer["resource"] = {"type": 4, "message": message}  # discord.py reads the message from it
            return answer
        if route.method == "POST" and route.path == "/webhooks/{webhook_id}/{webhook_token}":  # a follow-up
            self.http.responses.append(("followup", payload))
            return FakeDiscordHTTP.bot_message(TEXT, payload.get("content", ""))
        raise AssertionError(f"unexpected webhook call: {route.method} {route.path}")


# ----------------------------------------------------------------------------- the guild session, recorded
class RecordingSession(GuildSession):
    """A real :class:`GuildSession`; the calls that need the bridge, voice or the LLM are recorded
    and answered with a fixed sentence instead. ``set_pitch`` is not overridden: it is pure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, Any]] = []

    async def submit(self, request: Request) -> tuple[str | None, asyncio.Future[Any]]:
        self._voice_or_raise()  # the real precondition, so "not in voice" is still answered
        self.calls.append(("submit", request))
        return None, asyncio.get_running_loop().create_future()

    async def stop(self) -> str:
        self.calls.append(("stop", None))
        return "Stopped."

    async def list_voices(self) -> str:
        self.calls.append(("list_voices", None))
        return "Current voice: the server's default."

    async def set_voice(self, name: str) -> str:
        self.calls.append(("set_voice", name))
        return f"Voice set to **{name}**."


# ----------------------------------------------------------------------------- the bot
class Harness:
    """A logged-in :class:`VoiceBot` with one guild, and ways to talk to it like Discord does."""

    def __init__(self, bot: app_module.VoiceBot, http: FakeDiscordHTTP, problems_checked: list[Any]) -> None:
        self.bot = bot
        self.http = http
        self.problems_checked = problems_checked
        self.state = bot._connection  # noqa: SLF001 - the bot's real ConnectionState
        self.guild: discord.Guild | None = None

    @property
    def cog(self) -> cog_module.VoiceCog:
        cog = self.bot.get_cog("Voice")
        assert isinstance(cog, cog_module.VoiceCog)
        return cog

    def add_guild(self, *, in_voice: int | None = None) -> discord.Guild:
        self.guild = self.state._add_guild_from_data(guild_payload(in_voice=in_voice))  # noqa: SLF001
        return self.guild

    def session(self) -> RecordingSession:
        session = self.cog.sessions[GUILD]
        assert isinstance(session, RecordingSession)
        return session

    async def message(self, content: str, *, author: dict[str, Any] | None = None, dm: bool = False) -> None:
        """A message arrives: the bot's own ``on_message`` handles it (and awaits the command)."""
        author = author or user_payload(ANN, "ann")
        if dm:
            data = message_payload(content, author=author, channel_id=700, guild_id=None)
            channel, _ = self.state._get_guild_channel(data)  # noqa: SLF001 - a DMChannel, as the gateway makes it
        else:
            assert self.guild is not None
            data = message_payload(content, author=author, channel_id=TEXT, guild_id=GUILD)
            channel = self.guild.get_channel(TEXT)
        message = discord.Message(state=self.state, channel=channel, data=data)  # type: ignore[arg-type]
        await self.bot.on_message(message)

    def in_voice(self) -> RecordingVoiceClient:
        """The bot is connected to voice in the guild, as discord.py records it after a connect
        (``guild.voice_client``); the cog attaches it to the session on the next request."""
        voice = RecordingVoiceClient()
        self.state._add_voice_client(GUILD, voice)  # type: ignore[arg-type]  # noqa: SLF001
        return voice

    async def slash(self, command: str, /, **options: str) -> list[tuple[str, Any]]:
        """An application-command interaction arrives through the gateway parser and the tree;
        returns, once the command is done, what was sent back: ``("defer", None)``,
        ``("message", data)`` or ``("followup", data)``, in order."""
        # A fresh snowflake: discord.py treats an interaction older than 15 minutes as expired.
        created = discord.utils.time_snowflake(discord.utils.utcnow()) + next(_ids)
        data = {
            "id": str(created),
            "application_id": str(APP_ID),
            "type": 2,
            "token": "interaction-token",
            "version": 1,
            "guild_id": str(GUILD),
            "channel_id": str(TEXT),
            "channel": {"id": str(TEXT), "type": 0, "guild_id": str(GUILD), "name": "general", "position": 0},
            "member": {**member_payload(ANN, "ann"), "permissions": "0"},
            "locale": "en-US",
            "guild_locale": "en-US",
            "attachment_size_limit": 8 << 20,
            "entitlements": [],
            "data": {
                "id": str(next(_ids)),
                "name": command,
                "type": 1,
                "guild_id": str(GUILD),
                "options": [{"name": key, "type": 3, "value": value} for key, value in options.items()],
            },
        }
        finished = asyncio.Event()
        before = len(self.http.responses)

        async def completed(interaction: discord.Interaction, command: Any) -> None:
            finished.set()

        async def failed(context: commands.Context[Any], error: Exception) -> None:
            finished.set()

        self.bot.add_listener(completed, "on_app_command_completion")
        self.bot.add_listener(failed, "on_command_error")
        token = async_context.set(FakeWebhookAdapter(self.http))  # the tree's task copies this context
        try:
            self.state.parse_interaction_create(data)  # type: ignore[arg-type]
            await asyncio.wait_for(finished.wait(), 10)
        finally:
            async_context.reset(token)
            self.bot.remove_listener(completed, "on_app_command_completion")
            self.bot.remove_listener(failed, "on_command_error")
        # discord.py awaits the cog's error handler before dispatching on_command_error.
        return self.http.responses[before:]


@pytest.fixture
async def start_bot(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """``await start_bot(**settings)``: a VoiceBot logged in the way ``app.main`` starts it
    (``login`` runs ``setup_hook``: the cog is added, the tree synced if a test sets
    ``sync_commands=True``), the guild session recorded; ``problems`` is what the start-up service check reports, ``sync_error``
    what the command sync raises. Closed after the test (which unloads the cog)."""
    monkeypatch.setattr(cog_module, "GuildSession", RecordingSession)
    bots: list[app_module.VoiceBot] = []

    async def start(*, problems: list[str] | None = None, sync_error: Exception | None = None, **overrides: Any) -> Harness:
        checked: list[Any] = []

        async def service_problems(settings: Any) -> list[str]:
            checked.append(settings)
            return list(problems or [])

        monkeypatch.setattr(app_module, "service_problems", service_problems)
        overrides.setdefault("sync_commands", False)
        bot = app_module.VoiceBot(discord_settings(**overrides))
        bots.append(bot)
        http = FakeDiscordHTTP()
        http.sync_error = sync_error
        http.install(bot)
        await bot.login("not-a-real-token")
        return Harness(bot, http, checked)

    yield start
    for bot in bots:
        await bot.close()


NOT_IN_VOICE = NotInVoice.user_message
STRING = discord.AppCommandOptionType.string


def option(name: str, description: str, *, required: bool) -> dict[str, Any]:
    return {"type": STRING.value, "name": name, "description": description, "required": required}


#: What Discord is told about each command's options at sync (type 3 is STRING).
SYNCED_OPTIONS = {
    "join": [],
    "leave": [],
    "speak": [option("prompt", "What to say to the character", required=True)],
    "say": [option("text", "The text to speak", required=True)],
    "stop": [],
    "voice": [option("name", "Voice name, or 'default'", required=False)],
    "pitch": [option("semitones", "For example 3 or -2.5", required=False)],
}


# ----------------------------------------------------------------------------- registration
async def test_the_seven_commands_are_slash_commands_with_a_prefix_twin(start_bot) -> None:
    h = await start_bot()
    tree_commands = h.bot.tree.get_commands()
    assert [command.name for command in tree_commands] == COMMANDS
    parameters = {
        command.name: [(p.name, p.type, p.required, p.min_value, p.max_value) for p in command.parameters]
        for command in tree_commands
        if isinstance(command, app_commands.Command)
    }
    assert parameters == {
        "join": [],
        "leave": [],
        "speak": [("prompt", STRING, True, None, None)],
        "say": [("text", STRING, True, None, None)],
        "stop": [],
        "voice": [("name", STRING, False, None, None)],
        # Free text on purpose: "-2.5", "+3", "3st" are accepted and the range is enforced (with
        # a sentence) by the bot, the same way for /pitch and !pitch.
        "pitch": [("semitones", STRING, False, None, None)],
    }
    for command in tree_commands:
        assert command.guild_only, command.name  # voice is per guild: never offered in DMs
        assert command.description != "…", command.name  # discord.py's placeholder when none is given
        twin = h.bot.get_command(command.name)
        assert isinstance(twin, commands.HybridCommand) and twin.app_command is command
    assert {command.name for command in h.bot.commands} == {*COMMANDS, "help"}


async def test_intents_and_prefixes_follow_the_settings(start_bot) -> None:
    default = await start_bot()
    intents = default.bot.intents
    assert intents.message_content and intents.voice_states and intents.guilds
    slash_only = await start_bot(message_content=False, command_prefix="?")
    assert not slash_only.bot.intents.message_content and slash_only.bot.intents.voice_states

    slash_only.add_guild()
    slash_only.in_voice()
    await slash_only.message("!speak not for me")  # another bot's prefix
    await slash_only.message("?speak question mark")
    await slash_only.message(f"<@{BOT_ID}> speak mentioned")  # Discord always sends content that mentions the bot
    assert [request.text for _, request in slash_only.session().calls] == ["question mark", "mentioned"]


# ----------------------------------------------------------------------------- start-up sync
async def test_start_up_syncs_the_commands_to_the_configured_guild_only(start_bot) -> None:
    h = await start_bot(sync_commands=True, sync_guild_id=4242)
    assert h.http.global_syncs == []
    [(guild_id, payload)] = h.http.guild_syncs
    assert guild_id == 4242
    assert [command["name"] for command in payload] == COMMANDS
    assert {command["name"]: command["options"] for command in payload} == SYNCED_OPTIONS
    assert all(command["dm_permission"] is False and command["type"] == 1 for command in payload)
    assert [command.name for command in h.bot.tree.get_commands(guild=discord.Object(4242))] == COMMANDS


async def test_without_a_guild_the_commands_are_synced_globally(start_bot) -> None:
    h = await start_bot(sync_commands=True)
    assert h.http.guild_syncs == []
    [payload] = h.http.global_syncs
    assert {command["name"]: command["options"] for command in payload} == SYNCED_OPTIONS


async def test_sync_can_be_turned_off(start_bot) -> None:
    h = await start_bot(sync_commands=False, sync_guild_id=4242)
    assert h.http.global_syncs == [] and h.http.guild_syncs == []
    assert [command.name for command in h.bot.tree.get_commands()] == COMMANDS  # still served when synced elsewhere


async def test_a_failed_sync_is_logged_and_prefix_commands_still_work(start_bot, caplog) -> None:
    refused = discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"), {"code": 50001, "message": "Missing Access"})
    with caplog.at_level(logging.WARNING, logger="bots.discord"):
        h = await start_bot(sync_commands=True, sync_guild_id=4242, sync_error=refused)
    assert h.http.guild_syncs == [(4242, h.http.guild_syncs[0][1])]  # it was tried
    [record] = [r for r in caplog.records if "sync failed" in r.getMessage()]
    assert record.levelno == logging.WARNING and "Missing Access" in record.error  # type: ignore[attr-defined]
    h.add_guild()
    await h.message("!pitch 3")
    assert h.http.texts() == ["Pitch set to +3 semitones."]


async def test_unreachable_services_at_start_up_are_warnings_not_fatal(start_bot, caplog) -> None:
    problem = "The voice bridge at ws://127.0.0.1:8765/ws/stream is not reachable: refused"
    with caplog.at_level(logging.WARNING, logger="bots.discord"):
        h = await start_bot(problems=[problem])
    assert len(h.problems_checked) == 1 and h.problems_checked[0] is h.bot.settings
    assert [r.levelno for r in caplog.records if r.getMessage() == problem] == [logging.WARNING]
    assert isinstance(h.bot.get_cog("Voice"), cog_module.VoiceCog)


# ----------------------------------------------------------------------------- prefix messages
@pytest.mark.parametrize(
    ("content", "kind", "text"),
    [
        ("!speak tell me a joke", "speak", "tell me a joke"),
        ("!speak   what's 2+2?\nand why  ", "speak", "what's 2+2?\nand why"),
        ('!say "Hello," she said. Twice!', "say", '"Hello," she said. Twice!'),
        (f"<@{BOT_ID}> speak tell me a joke", "speak", "tell me a joke"),
        (f"<@!{BOT_ID}> say hi there", "say", "hi there"),
    ],
)
async def test_speak_and_say_messages_reach_the_session_with_the_whole_text(start_bot, content, kind, text) -> None:
    h = await start_bot()
    h.add_guild()
    voice = h.in_voice()
    await h.message(content)
    [(call, request)] = h.session().calls
    assert call == "submit" and (request.kind, request.text) == (kind, text)
    assert request.channel_id == TEXT and request.author == "ann"  # history per channel, the speaker's name
    assert h.session().voice is voice  # guild.voice_client, attached by the command
    assert h.http.sent == []  # the answer is posted by the session as it is spoken


@pytest.mark.parametrize(
    ("content", "pitch", "answer"),
    [
        ("!pitch -2", -2.0, "Pitch set to -2 semitones."),
        ("!pitch +3.5", 3.5, "Pitch set to +3.5 semitones."),
        ("!pitch -1st", -1.0, "Pitch set to -1 semitone."),
        (f"<@{BOT_ID}> pitch 4", 4.0, "Pitch set to +4 semitones."),
        ("!pitch", 0.0, "Pitch is +0 semitones."),
        ("!pitch 99", 0.0, "Pitch must be between -24 and +24 semitones."),
        ("!pitch up", 0.0, "Pitch is a number of semitones, like `/pitch 3` or `/pitch -2.5`."),
    ],
)
async def test_pitch_messages_are_converted_and_answered(start_bot, content, pitch, answer) -> None:
    h = await start_bot()
    h.add_guild()
    await h.message(content)
    assert h.http.texts() == [answer]
    assert h.session().pitch == pitch and h.session().link.pitch == pitch  # applied to the bridge session too


@pytest.mark.parametrize(
    ("content", "call", "answer"),
    [
        ("!voice alice", ("set_voice", "alice"), "Voice set to **alice**."),
        ("!voice Captain Nova", ("set_voice", "Captain Nova"), "Voice set to **Captain Nova**."),
        ("!voice", ("list_voices", None), "Current voice: the server's default."),
        ("!stop", ("stop", None), "Stopped."),
    ],
)
async def test_voice_and_stop_messages(start_bot, content, call, answer) -> None:
    h = await start_bot()
    h.add_guild()
    h.cog.session(GUILD)  # stop only answers for a guild that has a session
    await h.message(content)
    assert h.session().calls == [call]
    assert h.http.texts() == [answer]


@pytest.mark.parametrize(
    ("content", "answer"),
    [
        ("!speak", "Missing `prompt`: try `/speak prompt`."),
        ("!say    ", "Missing `text`: try `/say text`."),
        ("!speak hello", NOT_IN_VOICE),  # not joined yet
        ("!join", "Join a voice channel first, then use `/join`."),
    ],
)
async def test_failing_messages_are_answered_in_one_sentence(start_bot, content, answer) -> None:
    h = await start_bot()
    h.add_guild()
    await h.message(content)
    assert h.http.texts() == [answer]
    assert [payload["allowed_mentions"] for _, payload in h.http.sent] == [{"parse": []}]  # never pings
    assert all(call != "submit" for session in h.cog.sessions.values() for call, _ in session.calls)  # type: ignore[attr-defined]


async def test_commands_in_a_dm_are_refused(start_bot) -> None:
    h = await start_bot()
    await h.message("!speak hello", dm=True)
    assert h.http.texts() == ["That only works in a server."]
    assert h.cog.sessions == {}


async def test_bots_and_unknown_commands_are_ignored(start_bot, caplog) -> None:
    h = await start_bot()
    h.add_guild()
    h.in_voice()
    with caplog.at_level(logging.ERROR):
        await h.message("!speak hello", author=user_payload(OTHER_BOT, "otherbot", bot=True))
        await h.message("!dance")  # another bot's command, most likely
        await h.message("speak without a prefix")
        for _ in range(3):
            await asyncio.sleep(0)  # on_command_error runs as a task
    assert h.http.sent == [] and h.cog.sessions == {}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_join_from_a_message_connects_to_the_authors_voice_channel(start_bot, monkeypatch) -> None:
    connects: list[tuple[int, float, bool]] = []

    async def connect(channel: discord.VoiceChannel, *, timeout: float, self_deaf: bool, **_: Any) -> Any:
        connects.append((channel.id, timeout, self_deaf))
        return RecordingVoiceClient()

    monkeypatch.setattr(discord.VoiceChannel, "connect", connect)  # the gateway's voice handshake
    h = await start_bot(voice_connect_timeout=7.5)
    h.add_guild(in_voice=LOUNGE)
    await h.message("!join")
    assert connects == [(LOUNGE, 7.5, True)]
    assert h.http.texts() == [f"Joined <#{LOUNGE}>. Use `/speak` to talk to me."]
    assert isinstance(h.session().voice, RecordingVoiceClient)


async def test_join_checks_the_bots_permissions_in_that_channel(start_bot, monkeypatch) -> None:
    async def connect(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must not connect without Connect and Speak")

    monkeypatch.setattr(discord.VoiceChannel, "connect", connect)
    h = await start_bot()
    guild = h.add_guild(in_voice=LOCKED)
    locked = guild.get_channel(LOCKED)
    assert isinstance(locked, discord.VoiceChannel) and not locked.permissions_for(guild.me).connect
    await h.message("!join")
    assert h.http.texts() == [f"I need the Connect and Speak permissions in <#{LOCKED}>."]


async def test_leave_from_a_message_disconnects_and_forgets_the_session(start_bot) -> None:
    h = await start_bot()
    h.add_guild()
    voice = h.in_voice()
    await h.message("!speak hi")
    assert GUILD in h.cog.sessions
    await h.message("!leave")
    assert h.http.texts() == ["Bye!"]
    assert not voice.is_connected() and GUILD not in h.cog.sessions


# ----------------------------------------------------------------------------- slash interactions
async def test_slash_speak_defers_and_hands_the_prompt_over(start_bot) -> None:
    h = await start_bot()
    h.add_guild()
    h.in_voice()
    responses = await h.slash("speak", prompt="tell me a joke")
    [(call, request)] = h.session().calls
    assert call == "submit" and (request.kind, request.text, request.channel_id) == ("speak", "tell me a joke", TEXT)
    assert responses == [("defer", None)]  # "thinking…" until the reply is posted


async def test_slash_say_is_acknowledged_and_errors_are_followed_up(start_bot) -> None:
    h = await start_bot()
    h.add_guild()
    responses = await h.slash("say", text="hello")  # not in voice yet
    assert [(kind, data and data["content"]) for kind, data in responses] == [
        ("defer", None),
        ("followup", NOT_IN_VOICE),
    ]
    assert responses[1][1]["allowed_mentions"] == {"parse": []}
    h.in_voice()
    responses = await h.slash("say", text="hello")
    assert [(kind, data and data["content"]) for kind, data in responses] == [("defer", None), ("followup", "🔊")]
    assert [request.text for _, request in h.session().calls] == ["hello"]


async def test_slash_pitch_and_voice(start_bot) -> None:
    h = await start_bot()
    h.add_guild()
    responses = await h.slash("pitch", semitones="-2.5")
    assert [(kind, data["content"]) for kind, data in responses] == [("message", "Pitch set to -2.5 semitones.")]
    assert h.session().pitch == -2.5
    responses = await h.slash("pitch")
    assert [(kind, data["content"]) for kind, data in responses] == [("message", "Pitch is -2.5 semitones.")]
    responses = await h.slash("voice", name="alice")
    assert responses[-1] == ("followup", responses[-1][1]) and responses[-1][1]["content"] == "Voice set to **alice**."
    await h.slash("voice")
    assert h.session().calls == [("set_voice", "alice"), ("list_voices", None)]
