"""``anyreach-tui tail``: a call's events as JSON lines, no UI.

One JSON object per line, flushed line by line::

    {"ts": "2025-01-31T12:00:00.123Z", "conversation_id": "...", "event": "transcript",
     "id": "...", "role": "agent", "text": "...", "final": true}

Events are the listen session's own (``stateChange``, ``transcript``,
``agentDisconnected``, ``error``, ``ended``) with their payload fields beside
them, as reported by the one call follower (tui.monitor.follow), the same code
that runs every pane of the dashboard.  If the room connection drops while the
call goes on, the follower mints a fresh token and rejoins; the stream carries
on without repeating a settled segment, and ``ended`` is written once, when
the call is over.  ``--all`` follows every active call through the same
discovery poller as the dashboard.

Agent-health flags (tui.monitor.health, thresholds from ``[health]``) come as
their own lines, when raised::

    {"ts": "...", "conversation_id": "...", "event": "health", "flag": "slow",
     "value": 4.2}
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from tui.anyreach import AnyreachClient, AnyreachError, ErrorKind
from tui.commands.ending import HEADLESS_SIGNALS, Ending, leave
from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.config import Settings, add_config_arguments, settings_or_report
from tui.core.heap import freeze_startup_heap
from tui.core.jsonlines import json_line, utc_timestamp
from tui.core.logs import configure_logging
from tui.listen import AudioOutput
from tui.listen.media import favour_media_latency
from tui.monitor.discovery import DiscoveryPoller, DiscoveryUpdate
from tui.monitor.follow import (
    DEFAULT_PATIENCE_S,
    END_TIMEOUT_S,
    WHILE_LISTED_POLICY,
    AgentLeft,
    CallFollower,
    Ended,
    FollowEvent,
    FollowPolicy,
    SessionFailed,
    StateChanged,
    TranscriptReceived,
    listen_session,
)
from tui.monitor.health import FollowerHealth, HealthFlag, HealthThresholds, PolledVoice
from tui.monitor.model import utc_now

log = logging.getLogger(__name__)

TAIL_FLAGS = ("--api-url", "--org-id", "--device", "--no-audio", "--log-level")
# ``tail CONVERSATION_ID`` reports the first refusal or failed join; it gives up
# rejoining a lost call after DEFAULT_PATIENCE_S.  ``tail --all`` follows each call it
# discovers as a dashboard pane does, while the call is listed (WHILE_LISTED_POLICY).
TAIL_POLICY = FollowPolicy(patience_s=DEFAULT_PATIENCE_S, fail_fast=True)
END_GRACE_S = END_TIMEOUT_S + 0.5

# What an API refusal means for tail's exit status: the only such map.
EXIT_FOR_KIND = {
    ErrorKind.KEY_REJECTED: ExitCode.AUTH,
    ErrorKind.NO_SCOPE: ExitCode.AUTH,
    ErrorKind.NOT_FOUND: ExitCode.NOT_FOUND,
    ErrorKind.NOT_ACTIVE: ExitCode.NOT_ACTIVE,
    ErrorKind.UNAVAILABLE: ExitCode.API_UNAVAILABLE,
    ErrorKind.UNEXPECTED: ExitCode.API_UNAVAILABLE,
}


def exit_code_for(error: AnyreachError) -> ExitCode:
    return EXIT_FOR_KIND[error.kind]


class TailFailure(Exception):
    """Following stopped for a reason the user must hear about; ``code`` is the exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
        line = json_line(record)
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
            self.broken = True
            if self.on_broken is not None:
                self.on_broken()


class EventWriter:
    """A follower's events as the SDK's event lines (API troubles go to stderr instead)."""

    def __init__(
        self,
        out: JsonLines,
        conversation_id: str,
        health: HealthThresholds | None = None,
        *,
        health_tick_s: float | None = 0.5,
    ) -> None:
        self.out = out
        self.conversation_id = conversation_id
        self.follower: CallFollower | None = None
        self.health = FollowerHealth(
            health,
            clock=utc_now,
            on_flag=self._flag,
            speaking=PolledVoice(self._speaking, utc_now),
            tick_s=health_tick_s,
        )

    def _speaking(self) -> bool:
        session = self.follower.session if self.follower is not None else None
        return session is not None and session.speaking

    def _flag(self, flag: HealthFlag) -> None:
        self.out.write(self.conversation_id, "health", flag=flag.kind, value=flag.value)

    def __call__(self, event: FollowEvent) -> None:
        cid, out = self.conversation_id, self.out
        match event:
            case StateChanged(state):
                out.write(cid, "stateChange", state=state)
            case TranscriptReceived(segment):
                out.write(
                    cid,
                    "transcript",
                    id=segment.id,
                    role=segment.role,
                    text=segment.text,
                    final=segment.final,
                )
            case AgentLeft(identity):
                out.write(cid, "agentDisconnected", participant_identity=identity)
            case SessionFailed(message):
                out.write(cid, "error", message=message)
            case Ended():
                # Only a call that was joined has a stream to end; a first refusal
                # is told on stderr with its exit status, stdout stays empty.
                if self.follower is not None and self.follower.mints > 0:
                    out.write(cid, "ended")
        self.health.feed(event)  # a flag this event raises comes after its line; Ended: no tick


def follow(
    client: AnyreachClient,
    conversation_id: str,
    out: JsonLines,
    output: AudioOutput | None,
    health: HealthThresholds | None = None,
    policy: FollowPolicy = TAIL_POLICY,
) -> CallFollower:
    writer = EventWriter(out, conversation_id, health)
    follower = CallFollower(
        conversation_id,
        client,
        writer,
        policy=policy,
        open_session=lambda grant: listen_session(grant, output),
    )
    writer.follower = follower
    # Without an audio output nobody hears the call: its audio is never decoded.
    follower.set_heard(output is not None)
    return follower


async def follow_until_stopped(follower: CallFollower, stop: asyncio.Event) -> Ended:
    """Run the follower; a stop ends its session (bounded) and lets it finish."""
    run = asyncio.ensure_future(follower.run())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not run.done():
        await follower.stop(END_TIMEOUT_S)
        await asyncio.wait({run}, timeout=END_GRACE_S)
    if not run.done():
        run.cancel()
        return Ended("stopped")
    return run.result()


def exit_for(ended: Ended) -> ExitCode:
    """Exit status of ``tail CONVERSATION_ID`` for how its follower ended; raises on failure."""
    if ended.reason == "call_over":
        return ExitCode.OK
    if ended.reason == "stopped":
        return ExitCode.INTERRUPTED
    message = ended.message or "the call could not be followed"
    if ended.error is not None:
        raise TailFailure(exit_code_for(ended.error), message)
    raise TailFailure(ExitCode.NO_ROOM, message)


async def tail_one(
    settings: Settings,
    conversation_id: str,
    out: JsonLines,
    stop: asyncio.Event,
    *,
    audio: bool,
    stderr: TextIO,
) -> ExitCode:
    router = _audio_router(settings, conversation_id, stderr) if audio else None
    output = router.output_for(conversation_id) if router is not None else None
    client = _client(settings)
    try:
        follower = follow(client, conversation_id, out, output, settings.health.thresholds())
        ended = await follow_until_stopped(follower, stop)
        return exit_for(ended)
    finally:
        await client.aclose()
        if router is not None:
            router.close()
            router.device.close()


class AllCalls:
    """``tail --all``: a follower for every call discovery lists, until stopped."""

    def __init__(
        self,
        client: AnyreachClient,
        out: JsonLines,
        stop: asyncio.Event,
        stderr: TextIO,
        health: HealthThresholds | None = None,
    ) -> None:
        self.client, self.out, self.stop, self.stderr = client, out, stop, stderr
        self.health = health
        self.followers: dict[str, CallFollower] = {}
        self.runs: dict[str, asyncio.Task[Ended]] = {}
        self.finished: set[str] = set()
        self.failure: TailFailure | None = None
        self._api_trouble = False
        self._polled = False

    def on_update(self, update: DiscoveryUpdate) -> None:
        first, self._polled = not self._polled, True
        if update.error is not None:
            error = update.error
            if first or error.kind in (ErrorKind.KEY_REJECTED, ErrorKind.NO_SCOPE):
                self._fail(TailFailure(exit_code_for(error), error.message))
            elif not self._api_trouble:  # say it once, not every poll
                print(f"anyreach-tui tail: {error.message}", file=self.stderr)
            self._api_trouble = True
            return
        self._api_trouble = False
        for cid in update.gone:
            if cid in self.followers:
                self.followers[cid].conversation_over()
        for conversation in update.active:
            cid = conversation.id
            if cid not in self.followers and cid not in self.finished:
                follower = follow(
                    self.client, cid, self.out, None, self.health, WHILE_LISTED_POLICY
                )
                self.followers[cid] = follower
                run = asyncio.get_running_loop().create_task(follower.run(), name=f"tail {cid}")
                self.runs[cid] = run
                run.add_done_callback(functools.partial(self._settle, cid))

    def _settle(self, cid: str, run: asyncio.Task[Ended]) -> None:
        """What a finished follower means for --all; an auth failure stops everything."""
        del self.followers[cid], self.runs[cid]
        if run.cancelled():
            return
        error = run.exception()
        if error is not None:  # a bug: say so on this call's stream, the others go on
            log.error("following %s failed", cid, exc_info=error)
            self.finished.add(cid)
            self.out.write(cid, "error", message=str(error))
            self.out.write(cid, "ended")
            return
        ended = run.result()
        refusal = ended.error
        if refusal is not None and refusal.kind in (ErrorKind.KEY_REJECTED, ErrorKind.NO_SCOPE):
            self._fail(TailFailure(ExitCode.AUTH, refusal.message))
        elif refusal is not None and refusal.retryable and ended.reason == "refused":
            pass  # room not ready yet or a passing hiccup: the next poll tries again
        else:
            self.finished.add(cid)  # over, or refused for good (its lines are out)

    def _fail(self, failure: TailFailure) -> None:
        if self.failure is None:
            self.failure = failure
        self.stop.set()

    async def aclose(self) -> None:
        followers = list(self.followers.values())
        await asyncio.gather(*(f.stop(END_TIMEOUT_S) for f in followers))
        if self.runs:
            await asyncio.wait(list(self.runs.values()), timeout=END_GRACE_S)


async def tail_all(
    settings: Settings, out: JsonLines, stop: asyncio.Event, stderr: TextIO
) -> ExitCode:
    """Follow every active call, and each one that starts, until stopped."""
    client = _client(settings)
    calls = AllCalls(client, out, stop, stderr, settings.health.thresholds())
    poller = DiscoveryPoller(client, settings.discovery.interval_s, on_update=calls.on_update)
    try:
        poller.start()
        await stop.wait()
        await poller.stop()
        await calls.aclose()
        if calls.failure is not None:
            raise calls.failure
        return ExitCode.OK
    finally:
        await poller.stop()
        await client.aclose()


def _client(settings: Settings) -> AnyreachClient:
    assert settings.api_key is not None
    return AnyreachClient(settings.api_url, settings.api_key.get_secret_value(), settings.org_id)


def _audio_router(settings: Settings, conversation_id: str, stderr: TextIO) -> Any:
    # Imported here: PortAudio is only loaded when the user asked to hear the call.
    from tui.audio import AudioRouter, open_output_device

    favour_media_latency()  # the call's frames and the device wait less for the GIL
    device = open_output_device(settings.audio.device, no_audio=settings.audio.no_audio)
    router = AudioRouter(device)
    router.set_heard([conversation_id])
    if router.notice:
        print(f"anyreach-tui tail: {router.notice}", file=stderr)
    return router


TAIL_EXIT_CODES = (
    ExitCode.OK,
    ExitCode.BAD_CONFIG,
    ExitCode.AUTH,
    ExitCode.NOT_FOUND,
    ExitCode.NOT_ACTIVE,
    ExitCode.API_UNAVAILABLE,
    ExitCode.NO_ROOM,
    ExitCode.INTERRUPTED,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui tail",
        description=(
            "Print a live call's events as JSON lines, one object per line, flushed at once:\n"
            "ts, conversation_id, event (stateChange, transcript, agentDisconnected, error,\n"
            "ended, health) and the event's fields (state; id, role, text, final;\n"
            "participant_identity; message; flag, value).  Ends when the call ends.\n"
            "Reads the same configuration as the dashboard (file, ANYREACH_* variables,\n"
            "flags)."
        ),
        epilog=exit_codes_help(TAIL_EXIT_CODES),
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

    As the real command (no ``stdout`` given) the process ends through the
    native-layer exit guard once everything is flushed; pass ``stdout`` to run
    it in-process and get the status.
    """
    code = _main(argv, stdout or sys.stdout, stderr or sys.stderr)
    if stdout is None:
        leave(code)
    return int(code)


def _main(argv: Sequence[str] | None, stdout: TextIO, stderr: TextIO) -> ExitCode:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.all and args.audio:
            parser.error("--audio plays one call: give a CONVERSATION_ID instead of --all")
    except SystemExit as exit_:  # argparse: bad arguments, or --help
        return ExitCode.BAD_CONFIG if exit_.code else ExitCode.OK  # argparse exits 0 or 2
    settings = settings_or_report(args, stderr)
    if settings is None:
        return ExitCode.BAD_CONFIG
    if settings.api_key is None:
        print(
            "anyreach-tui tail: no API key: set ANYREACH_API_KEY or api_key in "
            f"{settings.config_path or 'the config file'}",
            file=stderr,
        )
        return ExitCode.BAD_CONFIG
    # Library noise goes to the log file; stdout carries JSON only, stderr our messages.
    configure_logging(getattr(logging, settings.log.level), settings.log.file)
    # An SSH drop (SIGHUP), a kill (SIGTERM) or Ctrl-C ends the sessions cleanly, by the
    # shared ending: bounded by its deadline even if the loop is too busy to notice.
    stop = asyncio.Event()

    async def end_sessions() -> None:
        stop.set()

    interrupted = ExitCode.OK if args.all else ExitCode.INTERRUPTED
    freeze_startup_heap()  # long runs: full collections walk only what came later
    try:
        with Ending(end_sessions, signals=HEADLESS_SIGNALS, exit_code=interrupted):
            return asyncio.run(_run(args, settings, JsonLines(stdout), stop, stderr))
    except TailFailure as failure:
        print(f"anyreach-tui tail: {failure.message}", file=stderr)
        return failure.code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


async def _run(
    args: argparse.Namespace,
    settings: Settings,
    out: JsonLines,
    stop: asyncio.Event,
    stderr: TextIO,
) -> ExitCode:
    out.on_broken = stop.set
    if args.all:
        return await tail_all(settings, out, stop, stderr)
    code = await tail_one(
        settings, args.conversation_id, out, stop, audio=args.audio, stderr=stderr
    )
    return ExitCode.OK if code == ExitCode.INTERRUPTED and out.broken else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
