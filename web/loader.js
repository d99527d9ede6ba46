// Starts the visualizer: loads the wasm, hands it the lessons the native engine recorded at
// build time (lessons/<id>.json), an optional trace from ?trace=<url>, and starts it on the
// canvas. Query parameters: ?lesson=<id> (which lesson to show first), ?trace=<url> (a trace
// file to open instead), ?zoom=<factor> (UI scale, e.g. 1.5 on a projector).
import init, * as viz from './greenlet_visualizer.js';

const params = new URLSearchParams(location.search);
const status = document.getElementById('status');

function say(message, isError = false) {
  status.textContent = message;
  status.classList.toggle('error', isError);
  status.hidden = false;
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  }
  return response;
}

// The file name part of a URL, as the visualizer names an opened trace.
function nameOf(url) {
  const path = new URL(url, location.href).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

async function main() {
  await init();

  const ids = viz.lesson_ids();
  const lessons = await Promise.all(ids.map((id) => fetchOk(`lessons/${id}.json`).then((r) => r.text())));
  ids.forEach((id, i) => viz.add_lesson(id, lessons[i]));

  const traceUrl = params.get('trace');
  let traceError = null;
  if (traceUrl) {
    try {
      const bytes = new Uint8Array(await (await fetchOk(traceUrl)).arrayBuffer());
      viz.open_trace(nameOf(traceUrl), bytes);
    } catch (e) {
      // The visualizer still starts (with a lesson); the message stays on screen.
      traceError = `Could not load the trace ${traceUrl}: ${e.message}`;
    }
  }

  const picker = document.getElementById('pick');
  picker.addEventListener('change', async () => {
    const file = picker.files[0];
    if (file) {
      viz.open_trace(file.name, new Uint8Array(await file.arrayBuffer()));
    }
    picker.value = '';
  });
  // Called by the visualizer on Ctrl+O.
  window.greenletVizPickFile = () => picker.click();

  // Read-only view of the visualizer for tests and scripts; see visualizer/src/web/mod.rs.
  window.greenletViz = Object.freeze({
    state: () => JSON.parse(viz.state() || 'null'),
  });

  const zoom = Number.parseFloat(params.get('zoom'));
  const canvas = document.getElementById('viz');
  await viz.start(canvas, params.get('lesson'), Number.isFinite(zoom) ? zoom : undefined);
  canvas.focus();
  if (traceError) {
    say(traceError, true);
    setTimeout(() => { status.hidden = true; }, 8000);
  } else {
    status.hidden = true;
  }
}

main().catch((e) => {
  console.error(e);
  say(`The visualizer could not start: ${e.message ?? e}`, true);
});
