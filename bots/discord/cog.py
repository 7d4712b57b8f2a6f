"""The Discord edge: hybrid commands (slash, with the prefix fallback) that turn contexts into
:class:`GuildSession` calls and answers into messages.

Everything worth testing lives in :mod:`bots.discord.session`; this module only finds the
guild's session, the author's voice channel and the reply target, and maps failures to the
sentences the user sees. Replies never ping anyone (LLM text could contain ``@everyone``).
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots.discord.errors import BadRequest, UserFacingError
from bots.discord.llm import ChatClient, ChatHistory
from bots.discord.session import GuildSession, Reply, Request
from bots.discord.settings import DiscordSettings

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
NO_MENTIONS = discord.AllowedMentions.none()

#: Close code Discord uses for voice clients without DAVE end-to-end encryption.
CLOSE_DAVE_REQUIRED = 4017


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut ``text`` into Discord-sized messages, at a paragraph, line or word when possible."""
    text = text.strip()
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        if cut <= limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


class PostedMessages:
    """The messages one reply was posted as; :meth:`replace` edits them to hold other text
    (an interrupted reply, cut to what was heard), deleting the parts no longer needed."""

    def __init__(self, ctx: commands.Context[Any], messages: list[discord.Message]) -> None:
        self.ctx = ctx
        self.messages = messages

    async def replace(self, text: str) -> None:
        parts = split_message(text)
        for message, part in zip(self.messages, parts, strict=False):
            await message.edit(content=part, allowed_mentions=NO_MENTIONS)
        for message in self.messages[len(parts) :]:
            await message.delete()
        for part in parts[len(self.messages) :]:
            self.messages.append(await self.ctx.channel.send(part, allowed_mentions=NO_MENTIONS))
        self.messages = self.messages[: len(parts)]


def make_reply(ctx: commands.Context[Any]) -> Reply:
    """Post to where the command came from: the interaction's follow-up, else the channel."""

    async def reply(text: str) -> PostedMessages:
        messages: list[discord.Message] = []
        for part in split_message(text):
            try:
                messages.append(await ctx.send(part, allowed_mentions=NO_MENTIONS))
            except discord.HTTPException:
                # An interaction token lasts 15 minutes; a long queue can outlive it.
                messages.append(await ctx.channel.send(part, allowed_mentions=NO_MENTIONS))
        return PostedMessages(ctx, messages)

    return reply


class VoiceCog(commands.Cog, name="Voice"):
    """Join a voice channel and answer in a character's voice."""

    def __init__(self, bot: commands.Bot, settings: DiscordSettings, chat: ChatClient | None = None) -> None:
        self.bot = bot
        self.settings = settings
        self.chat = chat or ChatClient(settings)
        self.history = ChatHistory(settings.history_turns, settings.history_channels)
        self.sessions: dict[int, GuildSession] = {}

    def session(self, guild_id: int) -> GuildSession:
        session = self.sessions.get(guild_id)
        if session is None:
            session = self.sessions[guild_id] = GuildSession(guild_id, self.settings, self.chat, self.history)
        return session

    async def cog_unload(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()
        await self.chat.close()

    async def _answer(self, ctx: commands.Context[Any], text: str) -> None:
        await make_reply(ctx)(text)

    # ------------------------------------------------------------------ commands
    @commands.hybrid_command(description="Join your voice channel.")
    @commands.guild_only()
    async def join(self, ctx: commands.Context[Any]) -> None:
        await ctx.defer()
        channel = getattr(getattr(ctx.author, "voice", None), "channel", None)
        if channel is None:
            raise BadRequest(user_message="Join a voice channel first, then use `/join`.")
        me = ctx.guild.me  # type: ignore[union-attr]
        permissions = channel.permissions_for(me)
        if not (permissions.connect and permissions.speak):
            raise BadRequest(user_message=f"I need the Connect and Speak permissions in {channel.mention}.")
        voice = ctx.guild.voice_client  # type: ignore[union-attr]
        try:
            if voice is not None and voice.channel == channel and voice.is_connected():
                self.session(ctx.guild.id).attach_voice(voice)  # type: ignore[union-attr, arg-type]
                await self._answer(ctx, f"I'm already in {channel.mention}.")
                return
            if voice is not None:
                await voice.move_to(channel)
            else:
                voice = await channel.connect(timeout=self.settings.voice_connect_timeout, self_deaf=True)
        except TimeoutError:
            message = f"I couldn't connect to {channel.mention} in time. Please try again."
            raise BadRequest(user_message=message) from None
        except discord.ConnectionClosed as exc:
            if exc.code == CLOSE_DAVE_REQUIRED:
                raise BadRequest(
                    str(exc), "Discord refused my voice connection: it requires DAVE encryption (install `davey`)."
                ) from None
            raise BadRequest(str(exc), f"Discord closed my voice connection ({exc.code}). Please try again.") from None
        except (discord.ClientException, RuntimeError) as exc:
            raise BadRequest(str(exc), f"I couldn't join {channel.mention}: {exc}") from None
        self.session(ctx.guild.id).attach_voice(voice)  # type: ignore[union-attr, arg-type]
        await self._answer(ctx, f"Joined {channel.mention}. Use `/speak` to talk to me.")

    @commands.hybrid_command(description="Leave the voice channel.")
    @commands.guild_only()
    async def leave(self, ctx: commands.Context[Any]) -> None:
        await ctx.defer()
        guild = ctx.guild
        assert guild is not None
        voice = guild.voice_client
        session = self.sessions.pop(guild.id, None)
        if session is not None:
            await session.close()
        if voice is None:
            await self._answer(ctx, "I'm not in a voice channel.")
            return
        await voice.disconnect(force=False)
        await self._answer(ctx, "Bye!")

    @commands.hybrid_command(description="Ask the character something; the answer is spoken (and posted).")
    @commands.guild_only()
    @app_commands.describe(prompt="What to say to the character")
    async def speak(self, ctx: commands.Context[Any], *, prompt: str) -> None:
        await self._submit(ctx, "speak", prompt)

    @commands.hybrid_command(description="Speak this text as it is.")
    @commands.guild_only()
    @app_commands.describe(text="The text to speak")
    async def say(self, ctx: commands.Context[Any], *, text: str) -> None:
        await self._submit(ctx, "say", text)

    async def _submit(self, ctx: commands.Context[Any], kind: str, text: str) -> None:
        await ctx.defer()
        assert ctx.guild is not None
        session = self.session(ctx.guild.id)
        voice = ctx.guild.voice_client
        if voice is not None and session.voice is None:
            session.attach_voice(voice)  # type: ignore[arg-type]  # e.g. after a restart of the cog
        request = Request(
            kind,  # type: ignore[arg-type]
            text,
            channel_id=ctx.channel.id,
            author=getattr(ctx.author, "display_name", ""),
            reply=make_reply(ctx),
        )
        note, _ = await session.submit(request)
        if note:
            await self._answer(ctx, note)
        elif ctx.interaction is not None and (kind == "say" or not self.settings.post_text):
            # A slash command must be answered, and no reply text will follow.
            await self._answer(ctx, "🔊")

    @commands.hybrid_command(description="Stop speaking and clear the queue.")
    @commands.guild_only()
    async def stop(self, ctx: commands.Context[Any]) -> None:
        assert ctx.guild is not None
        session = self.sessions.get(ctx.guild.id)
        await self._answer(ctx, await session.stop() if session is not None else "Nothing is playing.")

    @commands.hybrid_command(description="Choose the character's voice (no name: list them; 'default' to reset).")
    @commands.guild_only()
    @app_commands.describe(name="Voice name, or 'default'")
    async def voice(self, ctx: commands.Context[Any], *, name: str | None = None) -> None:
        await ctx.defer()
        assert ctx.guild is not None
        session = self.session(ctx.guild.id)
        await self._answer(ctx, await session.list_voices() if name is None else await session.set_voice(name))

    @commands.hybrid_command(description="Shift the voice's pitch in semitones (-24 to +24).")
    @commands.guild_only()
    @app_commands.describe(semitones="For example 3 or -2.5")
    async def pitch(self, ctx: commands.Context[Any], semitones: str | None = None) -> None:
        assert ctx.guild is not None
        session = self.session(ctx.guild.id)
        if semitones is None:
            await self._answer(ctx, f"Pitch is {session.pitch:+g} semitones.")
            return
        await self._answer(ctx, await session.set_pitch(semitones))

    # ------------------------------------------------------------------ errors and events
    async def cog_command_error(self, ctx: commands.Context[Any], error: Exception) -> None:
        await self._answer(ctx, user_message_for(error, ctx))

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Kicked or disconnected from voice: stop and forget the voice client."""
        if self.bot.user is None or member.id != self.bot.user.id:
            return
        if before.channel is not None and after.channel is None:
            session = self.sessions.get(member.guild.id)
            if session is not None:
                log.info("left voice", extra={"guild": member.guild.id})
                await session.detach_voice()


def user_message_for(error: Exception, ctx: commands.Context[Any] | None = None) -> str:
    """The sentence a failed command answers with."""
    original = getattr(error, "original", None) or getattr(error, "__cause__", None)
    if isinstance(error, (commands.HybridCommandError, commands.CommandInvokeError)) and original is not None:
        error = original
    if isinstance(error, app_commands.CommandInvokeError) and error.original is not None:
        error = error.original
    if isinstance(error, UserFacingError):
        return error.user_message
    if isinstance(error, commands.NoPrivateMessage):
        return "That only works in a server."
    if isinstance(error, commands.MissingRequiredArgument):
        name = ctx.command.qualified_name if ctx is not None and ctx.command else "command"
        return f"Missing `{error.param.name}`: try `/{name} {error.param.name}`."
    if isinstance(error, commands.BadArgument):
        return f"I didn't understand that: {error}"
    log.error("command failed", exc_info=error)
    return "Something went wrong on my side; please try again."
