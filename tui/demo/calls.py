"""A simulated AI-agent call: one room, an agent bot and a caller bot running a scenario.

::

    call = SimulatedCall(url, api_key, api_secret, "room-1", CallOptions(scenario="support"))
    await call.start()        # agent joined & publishing, caller joined
    await call.wait_ended()   # script over (or the agent left early); agent has left
    await call.stop()

The script survives server drops: the bots rejoin on their own and the script
waits for both before each line, so the conversation carries on where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tui.demo.bots import AgentBot, Bot, SentSegment, sleep_until
from tui.demo.scenarios import Line, Scenario, load_scenario
from tui.demo.tts import AGENT_VOICE, CALLER_VOICE, duration_of, estimated_duration, synthesize

log = logging.getLogger(__name__)

EventName = Literal["agent_joined", "caller_joined", "ended", "agent_left"]
# How long the caller stays after the agent has hung up at the end of a script.
CALLER_LINGER = 1.0
# A participant that disconnects right after closing a text stream can lose its tail
# in flight; receivers then see the stream aborted.  Real agents never hang up that fast.
HANGUP_GRACE = 1.0
# Long enough for a call queued behind others for a join slot (bots.MAX_CONCURRENT_JOINS).
JOIN_TIMEOUT = 120.0

__all__ = ["CallOptions", "SentSegment", "SimulatedCall"]


@dataclass(frozen=True)
class CallOptions:
    scenario: str = "support"
    mode: Literal["speech", "tone"] = "speech"
    tone_hz: float = 440.0
    legacy_transcription: bool = False
    stream_transcription: bool = True
    loop: bool = False
    # Pauses between lines (and tone-mode line lengths) are multiplied by this;
    # tests use < 1 to stay short.
    time_scale: float = 1.0
    # Play only the first N lines of the script (tests); None plays it all.
    max_lines: int | None = None
    # Agent identity; callers of several calls should keep them distinct per room only.
    agent_identity: str = "agent-ava"


class SimulatedCall:
    """One room with an agent bot and a caller bot playing a scenario."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        room_name: str,
        options: CallOptions | None = None,
        *,
        caller_identity: str = "+15551230001",
        on_event: Callable[[str, SimulatedCall], object] | None = None,
        on_segment: Callable[[SentSegment], None] | None = None,
    ) -> None:
        self.room_name = room_name
        self.options = options or CallOptions()
        self.scenario: Scenario = load_scenario(self.options.scenario)
        self.caller_identity = caller_identity
        self._on_event = on_event
        self.sent_segments: list[SentSegment] = []
        self.events: list[str] = []
        self.agent = AgentBot(
            url=url,
            api_key=api_key,
            api_secret=api_secret,
            room_name=room_name,
            identity=self.options.agent_identity,
            display_name="Anyreach Agent",
            stream_transcription=self.options.stream_transcription,
            legacy_transcription=self.options.legacy_transcription,
            on_sent=self._record_segment,
            on_joined=lambda bot: self._emit("agent_joined"),
            continuous_audio=self.options.mode == "tone",
        )
        self.caller = Bot(
            url=url,
            api_key=api_key,
            api_secret=api_secret,
            room_name=room_name,
            identity=caller_identity,
            display_name=f"Caller {caller_identity}",
            kind="sip",
            role="caller",
            on_joined=lambda bot: self._emit("caller_joined"),
        )
        self._on_segment = on_segment
        self._ended = asyncio.Event()
        self._script_task: asyncio.Task[None] | None = None
        self._tone_task: asyncio.Task[None] | None = None
        self._agent_left = False
        self._handler_tasks: set[asyncio.Future[object]] = set()

    def __repr__(self) -> str:
        return f"<SimulatedCall room={self.room_name!r} scenario={self.options.scenario!r}>"

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def start(self) -> None:
        """Join both bots (agent publishing its microphone) and start the script."""
        self.agent.start()
        self.caller.start()
        await asyncio.wait_for(
            asyncio.gather(self.agent.wait_connected(), self.caller.wait_connected()), JOIN_TIMEOUT
        )
        if self.options.mode == "tone":
            self._tone_task = asyncio.create_task(self.agent.play_tone(self.options.tone_hz))
        self._script_task = asyncio.create_task(self._run_script(), name=f"script {self.room_name}")

    async def wait_ended(self) -> None:
        """Until the script is over (or the agent left early); the agent has left by then."""
        await self._ended.wait()

    async def stop(self) -> None:
        """Stop the script and take both bots out of the room."""
        for task in (self._script_task, self._tone_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await asyncio.gather(self._agent_leaves(), self.caller.leave())
        self._ended.set()

    def _record_segment(self, segment: SentSegment) -> None:
        self.sent_segments.append(segment)
        if self._on_segment is not None:
            try:
                self._on_segment(segment)
            except Exception:
                log.exception("%r: on_segment handler failed", self)

    def _emit(self, name: EventName) -> None:
        self.events.append(name)
        if self._on_event is None:
            return
        try:
            result = self._on_event(name, self)
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)
        except Exception:
            log.exception("%r: on_event handler failed for %s", self, name)

    async def _agent_leaves(self) -> None:
        if self._agent_left:
            return
        self._agent_left = True
        if self._tone_task is not None:
            self._tone_task.cancel()
        await self.agent.leave()
        self._emit("agent_left")

    def _script_lines(self) -> list[Line]:
        lines = list(self.scenario.lines)
        if self.options.max_lines is not None:
            lines = lines[: self.options.max_lines]
        return lines

    async def _run_script(self) -> None:
        try:
            while True:
                await self._play_lines(self._script_lines())
                if self._agent_left or not self.options.loop:
                    break
            # let the last transcript leave the data channel before hanging up
            await asyncio.sleep(HANGUP_GRACE)
            await self._agent_leaves()
            self._finish()
            await asyncio.sleep(CALLER_LINGER)
            await self.caller.leave()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A broken script must not take the process (and other calls) down.
            log.exception("%r: script failed", self)
            self._finish()

    def _finish(self) -> None:
        if not self._ended.is_set():
            self._ended.set()
            self._emit("ended")

    async def _play_lines(self, lines: list[Line]) -> None:
        """Play ``lines``; in an agent-leaves-early script the caller plays on alone.

        A line is made (synthesized) during the pause before it, so the pause is the
        silence a listener hears.  A line with ``overlap`` starts that long before the
        line before it ends (a talk-over scenario): both are said at once.
        """
        leaves_after = self.scenario.agent_leaves_after
        scale = self.options.time_scale
        saying: list[asyncio.Task[None]] = []  # lines still being said
        ends_at = 0.0  # loop time at which the last line started ends
        try:
            for index, line in enumerate(lines):
                overlapping = line.overlap > 0 and bool(saying)
                if not overlapping:
                    await asyncio.gather(*saying)
                    saying.clear()
                if index == leaves_after and not self._agent_left:
                    await self._agent_leaves()
                    self._finish()
                made = asyncio.ensure_future(self._make(line))
                try:
                    if overlapping:
                        await sleep_until(ends_at - line.overlap * scale)
                    else:
                        await asyncio.sleep(line.pause_before * scale)
                    await self._wait_for_bots()
                    samples, duration = await made
                finally:
                    made.cancel()  # only matters when cancelled meanwhile
                ends_at = asyncio.get_running_loop().time() + duration
                saying.append(asyncio.create_task(self._say(line, samples, duration)))
            await asyncio.gather(*saying)
        finally:
            for task in saying:
                task.cancel()

    async def _wait_for_bots(self) -> None:
        """After a server drop, hold the script until the bots are back in the room."""
        waits = [self.caller.wait_connected()]
        if not self._agent_left:
            waits.append(self.agent.wait_connected())
        await asyncio.gather(*waits)

    async def _make(self, line: Line) -> tuple[np.ndarray | None, float]:
        """The line's audio (speech mode; None in tone mode) and how long it takes."""
        if self.options.mode == "speech":
            voice = AGENT_VOICE if line.role == "agent" else CALLER_VOICE
            samples = await asyncio.to_thread(synthesize, line.text, voice)
            return samples, duration_of(samples)
        # nothing is really said in tone mode, so the line can be as short as asked
        return None, estimated_duration(line.text) * self.options.time_scale

    async def _say(self, line: Line, samples: np.ndarray | None, duration: float) -> None:
        speaker: Bot = self.agent if line.role == "agent" else self.caller
        jobs = []
        if samples is not None:
            jobs.append(speaker.play(samples))
        elif line.role == "caller" or self._agent_left:
            jobs.append(asyncio.sleep(duration))  # tone mode: the caller stays silent
        if not self._agent_left:
            if line.role == "agent":
                jobs.append(self.agent.transcribe_own_line(line.text, duration))
            else:
                jobs.append(
                    self.agent.transcribe_caller_line(
                        line.text, duration, self.caller.identity, self.caller.track_sid
                    )
                )
        await asyncio.gather(*jobs)
