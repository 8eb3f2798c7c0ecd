"""A webcam burst: N pictures at a set interval, Teachable Machine's hold-to-record.

`st.camera_input` takes one picture per click and cannot be driven from Python, so this is a bidirectional
custom component (`st.components.v2`, inline HTML and JavaScript, no build step): it opens the camera with
getUserMedia, draws N frames onto a canvas at the interval, and sends them back as one trigger value, a list
of JPEG data URLs, which `burst_camera` decodes to bytes for its callback. The camera stays on between bursts
(the preview frames the shot) until *Turn off the camera* or until the component leaves the page.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

# The frame size asked of the camera for each resolution name `st.camera_input` takes, so both inputs give
# pictures of the same size (the camera may give less).
RESOLUTIONS = {"480p": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
JPEG_PREFIX = "data:image/jpeg;base64,"
JPEG_QUALITY = 0.92

HTML = """
<div class="burst">
  <video muted playsinline></video>
  <div class="controls">
    <button class="camera" type="button">Turn on the camera</button>
    <button class="take" type="button" disabled></button>
  </div>
  <div class="status" role="status"></div>
</div>
"""

CSS = """
.burst { font-family: var(--st-font); color: var(--st-text-color); }
.burst video { width: 100%; max-width: 480px; background: var(--st-secondary-background-color);
  border-radius: var(--st-base-radius); display: block; aspect-ratio: 4 / 3; object-fit: cover; }
.burst .controls { display: flex; gap: 0.5rem; margin: 0.5rem 0; flex-wrap: wrap; }
.burst button { padding: 0.4rem 0.9rem; border-radius: var(--st-button-radius);
  border: 1px solid var(--st-border-color); background: var(--st-background-color);
  color: var(--st-text-color); cursor: pointer; font: inherit; }
.burst button.take { background: var(--st-primary-color); color: white;
  border-color: var(--st-primary-color); }
.burst button:disabled { opacity: 0.5; cursor: default; }
.burst .status { min-height: 1.4em; font-size: 0.9em; }
"""

# Streamlit calls this function again whenever the data changes; the camera and a burst in progress live on
# the root element, so a rerun neither drops the stream nor starts a second one.
JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  const root = parentElement.querySelector(".burst");
  const video = root.querySelector("video");
  const cameraButton = root.querySelector("button.camera");
  const takeButton = root.querySelector("button.take");
  const status = root.querySelector(".status");
  const state = root.burstState || (root.burstState = { stream: null, busy: false });
  const seconds = (data.interval_ms / 1000).toLocaleString();
  const takeLabel = `Take ${data.count} pictures, one every ${seconds} s`;

  const show = () => {
    cameraButton.textContent = state.stream ? "Turn off the camera" : "Turn on the camera";
    takeButton.textContent = state.busy ? takeButton.textContent : takeLabel;
    takeButton.disabled = !state.stream || state.busy;
  };
  const stop = () => {
    if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
    state.stream = null;
    video.srcObject = null;
    show();
  };
  const start = async () => {
    status.textContent = "Opening the camera...";
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: data.width }, height: { ideal: data.height } },
        audio: false,
      });
      video.srcObject = state.stream;
      await video.play();
      status.textContent = "";
    } catch (error) {
      state.stream = null;
      status.textContent = `The camera could not be opened (${error.name}): allow it in the browser.`;
    }
    show();
  };
  const grab = () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return canvas.toDataURL("image/jpeg", data.quality);
  };
  const burst = async () => {
    state.busy = true;
    show();
    const frames = [];
    for (let index = 0; index < data.count && state.stream; index++) {
      if (index) await new Promise((resolve) => setTimeout(resolve, data.interval_ms));
      frames.push(grab());
      takeButton.textContent = `${frames.length} of ${data.count}...`;
    }
    state.busy = false;
    status.textContent = `Saving ${frames.length} pictures...`;
    setTriggerValue("frames", frames);
    show();
  };

  cameraButton.onclick = () => (state.stream ? stop() : start());
  takeButton.onclick = () => { if (state.stream && !state.busy && video.videoWidth) burst(); };
  if (state.stream && video.srcObject !== state.stream) video.srcObject = state.stream;
  status.textContent = state.busy ? status.textContent : data.message;
  show();
  return () => { if (!root.isConnected) stop(); };
}
"""

_burst = st.components.v2.component("simpsons_camera_burst", html=HTML, css=CSS, js=JS)


@dataclass(frozen=True)
class BurstSettings:
    count: int
    interval_seconds: float
    resolution: str  # a key of RESOLUTIONS


def decoded(frames: list[str] | None) -> list[bytes]:
    """The JPEG bytes of the data URLs the component sent (anything else is dropped)."""
    jpegs = [frame for frame in frames or () if frame.startswith(JPEG_PREFIX)]
    return [base64.b64decode(frame[len(JPEG_PREFIX) :]) for frame in jpegs]


def burst_camera(
    settings: BurstSettings, key: str, on_pictures: Callable[[list[bytes]], None], message: str = ""
) -> None:
    """Mount the burst camera. When a burst ends, `on_pictures` gets its JPEG bytes before the page reruns (a
    callback, so what it saves shows on that very rerun); `message` shows under the buttons."""
    width, height = RESOLUTIONS[settings.resolution]
    _burst(
        key=key,
        data={
            "count": settings.count,
            "interval_ms": round(settings.interval_seconds * 1000),
            "width": width,
            "height": height,
            "quality": JPEG_QUALITY,
            "message": message,
        },
        on_frames_change=lambda: on_pictures(decoded(st.session_state[key].frames)),
    )
