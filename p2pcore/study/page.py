"""The study's single web page: instructions, timed trials, the question, feedback and the thank-you.

Everything is inline (no external resource, nothing leaves the machine). Image addresses name the
session, trial and side only, so the page cannot tell which image is real; the server says whether
a practice answer was right. Both images of a trial are decoded before they appear together, so
every pair is on screen for the same time, and the next pair loads while the question is asked.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Which image is real?</title>
<link rel="icon" href="data:,">
<style nonce="@NONCE@">
  :root { color-scheme: light; font: 18px/1.5 system-ui, sans-serif; }
  body { margin: 0; background: #f4f4f2; color: #202020; }
  main { max-width: 96vw; margin: 0 auto; padding: 2vh 2vw; text-align: center; }
  [hidden] { display: none !important; }
  #progress { min-height: 1.5em; margin: 0; color: #555; }
  #stage { position: relative; height: 72vh; display: flex; align-items: center; justify-content: center; }
  #pair { display: flex; gap: 3vw; justify-content: center; align-items: center; }
  #pair img { object-fit: contain; background: #ddd; }
  #question, #feedback { position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center;
                         justify-content: center; margin: 0; }
  .choices { display: flex; gap: 3vw; }
  button { font: inherit; padding: 0.6em 2.2em; border-radius: 0.4em; border: 1px solid #888; background: #fff;
           cursor: pointer; }
  button:disabled { opacity: 0.5; cursor: default; }
  kbd { font-family: ui-monospace, monospace; border: 1px solid #aaa; border-radius: 0.25em; padding: 0 0.3em;
        background: #fafafa; }
  #feedback { font-size: 1.6em; font-weight: 600; }
  #feedback.correct { color: #17702c; }
  #feedback.wrong { color: #a31d1d; }
  #error { color: #a31d1d; }
  .intro { max-width: 42em; margin: 8vh auto 0; text-align: left; }
</style>
</head>
<body>
<main>
<p id="progress" aria-live="polite"></p>
<section id="intro" class="intro">
  <h1>Which image is real?</h1>
  <p>Each trial shows two images side by side for @SECONDS_TEXT@. One is real; the other was made by a
  computer. When they disappear, say which one was real. If you are not sure, guess.</p>
  <p>Answer with the buttons or the keys: <kbd>F</kbd> or <kbd>&larr;</kbd> for the left image,
  <kbd>J</kbd> or <kbd>&rarr;</kbd> for the right one.</p>
  <p>@PRACTICE_TEXT@ Then @TRIALS@ without feedback.</p>
  <button id="start">Start</button>
</section>
<section id="stage" hidden>
  <div id="pair"></div>
  <div id="question" hidden>
    <h2>Which was real?</h2>
    <div class="choices">
      <button id="choose-left" data-side="left">Left <kbd>F</kbd></button>
      <button id="choose-right" data-side="right">Right <kbd>J</kbd></button>
    </div>
  </div>
  <p id="feedback" hidden></p>
</section>
<section id="break" class="intro" hidden>
  <h2>Practice is over</h2>
  <p>Now @TRIALS@, without feedback.</p>
  <button id="continue">Continue</button>
</section>
<section id="done" class="intro" hidden>
  <h2>Thank you!</h2>
  <p id="result"></p>
  <p>Your answers are saved. You can close this page.</p>
</section>
<p id="error" role="alert" hidden></p>
</main>
<script nonce="@NONCE@">
"use strict";
const $ = (id) => document.getElementById(id);
const loads = new Map();
let study = null, trial = 0, asked = 0, answering = false;

const pause = (seconds) => new Promise((done) => setTimeout(done, seconds * 1000));
const nextFrame = () => new Promise((done) => requestAnimationFrame(() => done()));

function show(...ids) {
  for (const id of ["intro", "stage", "break", "done"]) $(id).hidden = !ids.includes(id);
}

// A connection the server could not take at once (many participants starting together) is tried again.
async function retried(attempt) {
  for (let wait = 0.25; ; wait *= 2) {
    try {
      return await attempt();
    } catch (error) {
      if (wait > 4) throw error;
      await pause(wait);
    }
  }
}

async function post(path, body) {
  const response = await retried(() => fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

function load(index) {
  if (!loads.has(index)) {
    loads.set(index, Promise.all(["left", "right"].map(async (side) => {
      return retried(async () => {
        const image = new Image();
        image.alt = `${side} image`;
        image.src = `/image/${study.session}/${index}/${side}`;
        await image.decode();
        return image;
      });
    })));
  }
  return loads.get(index);
}

function fit(images) {
  // Both images in one box, so a difference in size or shape does not give the real one away.
  const width = Math.max(...images.map((i) => i.naturalWidth));
  const height = Math.max(...images.map((i) => i.naturalHeight));
  const scale = Math.min(1, (window.innerWidth * 0.44) / width, (window.innerHeight * 0.68) / height);
  for (const image of images) {
    image.width = Math.max(1, Math.round(width * scale));
    image.height = Math.max(1, Math.round(height * scale));
  }
}

function progressText() {
  return trial < study.practice ? `Practice ${trial + 1} of ${study.practice}`
                                   : `Trial ${trial - study.practice + 1} of ${study.trials}`;
}

async function runTrial() {
  $("progress").textContent = progressText();
  $("question").hidden = true;
  show("stage");
  const images = await load(trial);
  if (trial + 1 < study.practice + study.trials) load(trial + 1).catch(fail);
  fit(images);
  $("pair").replaceChildren(...images);
  await nextFrame();
  await pause(study.seconds);
  $("pair").replaceChildren();
  $("question").hidden = false;
  for (const button of document.querySelectorAll(".choices button")) button.disabled = false;
  asked = performance.now();
  answering = true;
}

async function choose(side) {
  if (!answering) return;
  answering = false;
  const rt = performance.now() - asked;
  for (const button of document.querySelectorAll(".choices button")) button.disabled = true;
  const reply = await post("/api/answer", { session: study.session, trial, chosen: side, rt_ms: Math.round(rt) });
  $("question").hidden = true;
  if (reply.practice) {
    const feedback = $("feedback");
    feedback.textContent = reply.correct ? "Correct" : `Wrong: the real image was on the ${reply.real_side}`;
    feedback.className = reply.correct ? "correct" : "wrong";
    feedback.hidden = false;
    await pause(study.feedback_seconds);
    feedback.hidden = true;
    feedback.textContent = "";
  }
  trial += 1;
  if (reply.complete) return finish(reply);
  if (trial === study.practice) {
    $("progress").textContent = "";
    show("break");
    $("continue").focus();
    return;
  }
  await pause(study.gap_seconds);
  await runTrial();
}

function finish(reply) {
  const percent = Math.round((100 * reply.fooled) / reply.judged);
  $("progress").textContent = "";
  $("result").textContent = `You chose the computer-made image as real in ${reply.fooled} of ${reply.judged} ` +
                            `trials (${percent}%). Someone who cannot tell them apart would score about 50%.`;
  show("done");
}

function fail(error) {
  answering = false;
  $("error").textContent = `Something went wrong: ${error.message}. Please tell the person running the study.`;
  $("error").hidden = false;
}

$("start").addEventListener("click", async () => {
  $("start").disabled = true;
  try {
    study = await post("/api/session", {});
    await runTrial();
  } catch (error) { fail(error); }
});
$("continue").addEventListener("click", () => runTrial().catch(fail));
for (const button of document.querySelectorAll(".choices button")) {
  button.addEventListener("click", () => choose(button.dataset.side).catch(fail));
}
document.addEventListener("keydown", (event) => {
  if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  const side = { f: "left", F: "left", ArrowLeft: "left", j: "right", J: "right", ArrowRight: "right" }[event.key];
  if (side && answering) {
    event.preventDefault();
    choose(side).catch(fail);
  }
});
</script>
</body>
</html>
"""


def _seconds_text(seconds: float) -> str:
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")


def render_page(*, seconds: float, practice: int, trials: int, nonce: str) -> bytes:
    """The page for these settings; `nonce` must match the Content-Security-Policy sent with it."""
    practice_text = {0: "There are no practice trials.",
                     1: "The first trial is practice: you are told whether you were right."}.get(
        practice, f"The first {practice} trials are practice: you are told whether you were right.")
    values = {"@NONCE@": nonce, "@SECONDS_TEXT@": _seconds_text(seconds), "@PRACTICE_TEXT@": practice_text,
              "@TRIALS@": "1 trial follows" if trials == 1 else f"{trials} trials follow"}
    text = _PAGE
    for placeholder, value in values.items():
        text = text.replace(placeholder, html.escape(value))
    return text.encode("utf-8")
