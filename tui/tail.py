"""``anyreach-tui tail``: a call's session events as JSON lines, no UI.

One JSON object per line, flushed line by line::

    {"ts": "2025-01-31T12:00:00.123Z", "conversation_id": "...", "event": "transcript",
     "id": "...", "role": "agent", "text": "...", "final": true}

Events are the listen session's own (``stateChange``, ``transcript``,
``agentDisconnected``, ``error``, ``ended``) with their payload fields beside
them.  If the room connection drops while the call goes on, a fresh token is
minted and the session rejoins; the stream carries on without repeating a
settled segment, and ``ended`` is written once, when the call is over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from tui.anyreach import (
    AnyreachClient,
    AnyreachError,
    ApiUnavailable,
    ConversationNotActive,
    ConversationNotFound,
    Forbidden,
    ListenerGrant,
    Unauthorized,
)
from tui.config import EXIT_BAD_CONFIG, Settings, add_config_arguments, settings_or_report
from tui.listen import AgentDisconnected, AudioOutput, SessionError, Transcript, listen
from tui.monitor.store import utc_timestamp

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_NOT_ACTIVE = 5
EXIT_API_UNAVAILABLE = 6
EXIT_NO_ROOM = 7
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = f"""\
exit status:
  {EXIT_OK}    the call ended normally (with --all: stopped by Ctrl-C or SIGTERM)
  {EXIT_BAD_CONFIG}    bad configuration or arguments (including no API key)
  {EXIT_AUTH}    authentication or scope: the API answered 401 or 403
  {EXIT_NOT_FOUND}    not found: no such conversation, or its room does not exist (404)
  {EXIT_NOT_ACTIVE}    not active: the conversation is over or has not started (409)
  {EXIT_API_UNAVAILABLE}    the Anyreach API is unavailable (network, 5xx, timeouts)
  {EXIT_NO_ROOM}    could not connect to the call's LiveKit room
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C, SIGTERM, SIGHUP) while following one call
"""

TAIL_FLAGS = ("--api-url", "--org-id", "--device", "--no-audio", "--log-level")
# How long a lost connection is retried (fresh token, rejoin) before giving up.
RECONNECT_FOR_S = 60.0
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
END_GRACE_S = 3.5
PROBE_INTERVAL_S = 3.0
# C1 control characters (U+0080-U+009F) act as escape sequences on some terminals;
# json.dumps escapes C0 controls but leaves these raw.
_C1_CONTROLS = re.compile("[\u007f-\u009f]")


class JsonLines:
    """Writes one JSON object per event and flushes it at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False  # the reader went away (tail | head): stop quietly
        self.on_broken: Callable[[], object] | None = None

    def write(self, conversation_id: str, event: str, **fields: Any) -> None:
        if self.broken:
            return
        record = {
            "ts": utc_timestamp(),
            "conversation_id": conversation_id,
            "event": event,
            **fields,
        }
        line = json.dumps(record, ensure_ascii=False)
        line = _C1_CONTROLS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", line)
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
            self.broken = True
            if self.on_broken is not None:
                self.on_broken()


class TailFailure(Exception):
    """Following stopped for a reason the user must hear about; ``code`` is the exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def exit_code_for(error: AnyreachError) -> int:
    if isinstance(error, Unauthorized | Forbidden):
        return EXIT_AUTH
    if isinstance(error, ConversationNotFound):
        return EXIT_NOT_FOUND
    if isinstance(error, ConversationNotActive):
        return EXIT_NOT_ACTIVE
    return EXIT_API_UNAVAILABLE


@dataclass
class _Attempt:
    """What happened to one listen session."""

    agent_left: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    connected: bool = False
    write_ended: bool = True  # False while rejoining: only the call's end writes "ended"


class CallFollower:
    """Follows one conversation's call until it ends, writing its events."""

    def __init__(
        self,
        client: AnyreachClient,
        conversation_id: str,
        out: JsonLines,
        stop: asyncio.Event,
        *,
        output: AudioOutput | None = None,
        on_connected: Callable[[], Any] | None = None,
    ) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.out = out
        self.stop = stop
        self.output = output
        self._on_connected = on_connected
        self._settled: set[str] = set()
        # Set when the API says the call is over (checked only when in doubt, see below).
        self._call_over = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None

    async def run(self) -> int:
        """EXIT_OK when the call ended, EXIT_INTERRUPTED when stopped; raises on failure.

        ``AnyreachError`` from the first token request propagates (the caller
        maps it); a first connection that fails raises ``TailFailure(EXIT_NO_ROOM)``.
        """
        try:
            return await self._follow()
        finally:
            if self._probe is not None:
                self._probe.cancel()

    async def _follow(self) -> int:
        loop = asyncio.get_running_loop()
        grant = await self.client.listener_token(self.conversation_id)
        joined_once = False
        rejoin_deadline: float | None = None
        while True:
            attempt = _Attempt()
            session = self._session(grant, attempt)
            failure = await self._connect(session)
            if self.stop.is_set():
                await self._end(session)
                return EXIT_INTERRUPTED
            if failure is None:
                joined_once, rejoin_deadline, attempt.connected = True, None, True
                if self._on_connected is not None:
                    self._on_connected()
                if self.output is not None:
                    await session.start_audio()
                await _first_of(attempt.agent_left, attempt.lost, self.stop, self._call_over)
                if attempt.agent_left.is_set() or self.stop.is_set() or self._call_over.is_set():
                    await self._end(session)
                    return EXIT_INTERRUPTED if self.stop.is_set() else EXIT_OK
            elif not joined_once:
                await self._end(session)
                raise TailFailure(EXIT_NO_ROOM, failure)
            # The connection was lost (or a rejoin failed) while the call may go on.
            attempt.write_ended = False
            await self._end(session)
            if rejoin_deadline is None:
                rejoin_deadline = loop.time() + RECONNECT_FOR_S
            try:
                if loop.time() >= rejoin_deadline:
                    raise TailFailure(
                        EXIT_NO_ROOM,
                        f"Lost the connection to the call and could not rejoin within "
                        f"{RECONNECT_FOR_S:g} s.",
                    )
                next_grant = await self._fresh_grant(rejoin_deadline)
            except TailFailure:
                self.out.write(self.conversation_id, "ended")
                raise
            if next_grant is None:  # the call is over (or we were stopped)
                self.out.write(self.conversation_id, "ended")
                return EXIT_INTERRUPTED if self.stop.is_set() else EXIT_OK
            grant = next_grant

    async def _connect(self, session: Any) -> str | None:
        """Join; None on success, else why not.  A stop while joining ends the session."""
        joining = asyncio.ensure_future(session.connect())
        stopped = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait({joining, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not joining.done():
            # Never cancel a connect: end() makes it give up, then it finishes by itself.
            await self._end(session)
            await asyncio.wait({joining})
        error = joining.exception()
        if error is None:
            return None
        if isinstance(error, SessionError):
            return error.message
        raise error

    def _session(self, grant: ListenerGrant, attempt: _Attempt) -> Any:
        cid = self.conversation_id
        session = listen(grant.url, grant.token, output=self.output)

        def on_state(state: str) -> None:
            self.out.write(cid, "stateChange", state=state)
            if state == "disconnected" and attempt.connected:
                attempt.lost.set()

        def on_transcript(t: Transcript) -> None:
            # A rejoin may deliver a segment again: each settled one is written once.
            if t.id in self._settled:
                return
            if t.final:
                self._settled.add(t.id)
            self.out.write(cid, "transcript", id=t.id, role=t.role, text=t.text, final=t.final)

        def on_agent_left(event: AgentDisconnected) -> None:
            self.out.write(
                cid, "agentDisconnected", participant_identity=event.participant_identity
            )
            if session.get_state() == "connected":
                attempt.agent_left.set()
            else:
                # While LiveKit resumes after a server crash it reports everyone as
                # gone, though the agent rejoins: ask the API instead of ending here.
                self._start_probe()

        def on_error(error: SessionError) -> None:
            self.out.write(cid, "error", message=error.message)

        def on_ended() -> None:
            if attempt.write_ended:
                self.out.write(cid, "ended")

        return (
            session.on("stateChange", on_state)
            .on("transcript", on_transcript)
            .on("agentDisconnected", on_agent_left)
            .on("error", on_error)
            .on("ended", on_ended)
        )

    def _start_probe(self) -> None:
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_over())

    async def _probe_until_over(self) -> None:
        """Ask the API now and then whether the call is still active."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                await self.client.listener_token(self.conversation_id)
            except ConversationNotActive:
                self._call_over.set()
                return
            except AnyreachError as error:  # not a verdict on the call: ask again later
                log.info("tail: checking %s failed: %s", self.conversation_id, error.message)

    async def _end(self, session: Any) -> None:
        await session.end()
        closed = asyncio.ensure_future(session.closed)
        await asyncio.wait({closed}, timeout=END_GRACE_S)

    async def _fresh_grant(self, deadline: float) -> ListenerGrant | None:
        """A new token to rejoin, or None if the call has ended.  Old tokens may have expired."""
        loop = asyncio.get_running_loop()
        for number in range(10_000):
            if self.stop.is_set():
                return None
            try:
                return await self.client.listener_token(self.conversation_id)
            except ConversationNotActive:
                return None
            except (ConversationNotFound, ApiUnavailable) as error:
                # Still active but its room is not back yet, or a passing API hiccup.
                if loop.time() >= deadline:
                    raise TailFailure(exit_code_for(error), error.message) from None
            delay = RECONNECT_DELAYS_S[min(number, len(RECONNECT_DELAYS_S) - 1)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
        return None


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()  # plain Event.wait()s, safe to cancel


async def tail_one(
    settings: Settings,
    conversation_id: str,
    out: JsonLines,
    stop: asyncio.Event,
    *,
    audio: bool,
    stderr: TextIO,
) -> int:
    output, router = _audio_output(settings, conversation_id, stderr) if audio else (None, None)
    client = _client(settings)
    try:
        return await CallFollower(client, conversation_id, out, stop, output=output).run()
    except AnyreachError as error:
        raise TailFailure(exit_code_for(error), error.message) from None
    finally:
        await client.aclose()
        if router is not None:
            router.close()
            router.device.close()


async def tail_all(settings: Settings, out: JsonLines, stop: asyncio.Event, stderr: TextIO) -> int:
    """Follow every active call, and each one that starts, until stopped."""
    client = _client(settings)
    followers: dict[str, asyncio.Task[int]] = {}
    finished: set[str] = set()
    api_trouble = False
    failure: TailFailure | None = None
    try:
        first_poll = True
        while not stop.is_set() and failure is None:
            try:
                active = await client.active_conversations()
            except (Unauthorized, Forbidden) as error:
                raise TailFailure(EXIT_AUTH, error.message) from None
            except AnyreachError as error:
                if first_poll:
                    raise TailFailure(exit_code_for(error), error.message) from None
                if not api_trouble:  # say it once, not every poll
                    print(f"anyreach-tui tail: {error.message}", file=stderr)
                api_trouble = True
                active = []
            else:
                api_trouble = False
            first_poll = False
            for conversation in active:
                cid = conversation.id
                if cid not in followers and cid not in finished:
                    follower = CallFollower(client, cid, out, stop)
                    followers[cid] = asyncio.create_task(follower.run(), name=f"tail {cid}")
            for cid, task in list(followers.items()):
                if task.done():
                    del followers[cid]
                    failure = _settle_follower(cid, task, finished, out)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.discovery.interval_s)
        stop.set()
        if followers:
            await asyncio.wait(followers.values(), timeout=END_GRACE_S + 1)
        if failure is not None:
            raise failure
        return EXIT_OK
    finally:
        await client.aclose()


def _settle_follower(
    cid: str, task: asyncio.Task[int], finished: set[str], out: JsonLines
) -> TailFailure | None:
    """Decide what a finished follower means for --all; a returned failure stops everything."""
    error = task.exception()
    if error is None or isinstance(error, ConversationNotActive):
        finished.add(cid)  # over, or it ended between the listing and the token
    elif isinstance(error, Unauthorized | Forbidden):
        return TailFailure(EXIT_AUTH, error.message)
    elif isinstance(error, ConversationNotFound | ApiUnavailable):
        pass  # room not ready yet or a passing hiccup: the next poll tries again
    elif isinstance(error, TailFailure):
        finished.add(cid)  # its error line is already out; other calls go on
    else:
        finished.add(cid)
        out.write(cid, "error", message=str(error))
        out.write(cid, "ended")
    return None


def _client(settings: Settings) -> AnyreachClient:
    assert settings.api_key is not None
    return AnyreachClient(settings.api_url, settings.api_key.get_secret_value(), settings.org_id)


def _audio_output(settings: Settings, conversation_id: str, stderr: TextIO) -> tuple[Any, Any]:
    # Imported here: PortAudio is only loaded when the user asked to hear the call.
    from tui.audio import AudioRouter, open_output_device

    device = open_output_device(settings.audio.device, no_audio=settings.audio.no_audio)
    router = AudioRouter(device)
    output = router.output_for(conversation_id)
    router.set_heard([conversation_id])
    if router.notice:
        print(f"anyreach-tui tail: {router.notice}", file=stderr)
    return output, router


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui tail",
        description=(
            "Print a live call's events as JSON lines, one object per line, flushed at once:\n"
            "ts, conversation_id, event (stateChange, transcript, agentDisconnected, error,\n"
            "ended) and the event's fields (state; id, role, text, final;\n"
            "participant_identity; message).  Ends when the call ends.  Reads the same\n"
            "configuration as the dashboard (file, ANYREACH_* variables, flags)."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("conversation_id", nargs="?", metavar="CONVERSATION_ID")
    target.add_argument(
        "--all",
        action="store_true",
        help="follow every active call, and each new one, until Ctrl-C",
    )
    parser.add_argument(
        "--audio",
        action="store_true",
        help="also play the call on the audio device (one call only)",
    )
    add_config_arguments(parser, TAIL_FLAGS)
    return parser


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run ``anyreach-tui tail``; returns the exit status.

    As the real command (no ``stdout`` given) the process ends here with
    ``os._exit`` once everything is flushed: LiveKit's native runtime can still
    be finishing a failed connection attempt while the interpreter shuts down,
    and then panics and aborts the process, replacing the documented exit
    status with SIGABRT.  Pass ``stdout`` to run it in-process and get the status.
    """
    code = _main(argv, stdout or sys.stdout, stderr or sys.stderr)
    if stdout is None:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


def _main(argv: Sequence[str] | None, stdout: TextIO, stderr: TextIO) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.all and args.audio:
            parser.error("--audio plays one call: give a CONVERSATION_ID instead of --all")
    except SystemExit as exit_:  # argparse: bad arguments, or --help
        return int(exit_.code or 0)
    settings = settings_or_report(args, stderr)
    if settings is None:
        return EXIT_BAD_CONFIG
    if settings.api_key is None:
        print(
            "anyreach-tui tail: no API key: set ANYREACH_API_KEY or api_key in "
            f"{settings.config_path or 'the config file'}",
            file=stderr,
        )
        return EXIT_BAD_CONFIG
    _log_to_file(settings)
    try:
        return asyncio.run(_run(args, settings, JsonLines(stdout), stderr))
    except TailFailure as failure:
        print(f"anyreach-tui tail: {failure.message}", file=stderr)
        return failure.code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _run(args: argparse.Namespace, settings: Settings, out: JsonLines, stderr: TextIO) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # An SSH drop (SIGHUP) or a kill (SIGTERM) ends the sessions cleanly, like Ctrl-C.
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in handled:
        loop.add_signal_handler(signum, stop.set)
    out.on_broken = stop.set
    try:
        if args.all:
            return await tail_all(settings, out, stop, stderr)
        code = await tail_one(
            settings, args.conversation_id, out, stop, audio=args.audio, stderr=stderr
        )
        return EXIT_OK if code == EXIT_INTERRUPTED and out.broken else code
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def _log_to_file(settings: Settings) -> None:
    # Library noise goes to the log file; stdout carries JSON only, stderr our messages.
    from tui.audio.logfile import configure_logging

    configure_logging(getattr(logging, settings.log.level), settings.log.file)
