// One call per tab: join the room with a listener token minted by the API
// emulator, play every audio track, read the lk.transcription text streams, and
// tell the benchmark what happened (POST /report) every second.
/* global LivekitClient */
"use strict";

const conversation = new URLSearchParams(location.search).get("conversation");
const state = {
  conversation,
  joined: false,
  audio_tracks: 0,
  playing: 0,
  updates: 0,
  finals: 0,
  error: null,
};

const MAX_LINES = 200; // a transcript on screen, not a growing document

function log(text) {
  const pane = document.getElementById("log");
  const line = document.createElement("div");
  line.textContent = text;
  pane.appendChild(line);
  while (pane.childElementCount > MAX_LINES) pane.firstElementChild.remove();
}

async function report() {
  state.playing = [...document.querySelectorAll("audio")].filter(
    (el) => !el.paused && el.readyState >= 2,
  ).length;
  try {
    await fetch("/report", { method: "POST", body: JSON.stringify(state) });
  } catch (error) {
    log(`report failed: ${error}`);
  }
}

async function main() {
  const grant = await (await fetch(`/token/${encodeURIComponent(conversation)}`)).json();
  const { Room, RoomEvent, Track } = LivekitClient;
  const room = new Room({ adaptiveStream: false, dynacast: false });
  room.on(RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === Track.Kind.Audio) {
      document.body.appendChild(track.attach());
      state.audio_tracks += 1;
    }
  });
  room.on(RoomEvent.TrackUnsubscribed, (track) => {
    if (track.kind === Track.Kind.Audio) {
      track.detach().forEach((el) => el.remove());
      state.audio_tracks -= 1;
    }
  });
  room.registerTextStreamHandler("lk.transcription", async (reader) => {
    const final = reader.info.attributes?.["lk.transcription_final"] === "true";
    let text = "";
    for await (const chunk of reader) {
      text += chunk;
      state.updates += 1;
    }
    if (final) state.finals += 1;
    log(text);
  });
  await room.connect(grant.url, grant.token, { autoSubscribe: true });
  await room.startAudio();
  state.joined = true;
}

main().catch((error) => {
  state.error = String(error);
  log(`failed: ${error}`);
});
setInterval(report, 1000);
