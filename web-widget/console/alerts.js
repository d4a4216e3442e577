// Offer alerts: a short beep (Web Audio, no asset) for every offer and, while the console
// tab is hidden, a desktop notification. One setting (a checkbox in the top bar, kept in
// localStorage) turns both off. Notification permission is asked on a user gesture only:
// the first click after sign-in, or switching the setting on.

const KEY = 'switchboard.console.alerts';
let audio = null;

export function alertsOn() {
  try { return localStorage.getItem(KEY) !== 'off'; } catch { return true; }
}

function askPermission() {
  if (!alertsOn() || !('Notification' in window) || Notification.permission !== 'default') return;
  try { Notification.requestPermission(); } catch { /* old browsers: callback form, ignored */ }
}

/** Wires the setting's checkbox. */
export function initAlerts(box) {
  box.checked = alertsOn();
  box.addEventListener('change', () => {
    try { localStorage.setItem(KEY, box.checked ? 'on' : 'off'); } catch { /* storage blocked */ }
    if (box.checked) askPermission();
  });
}

/** Signed in: the next click (a user gesture, as browsers require) asks for permission. */
export function armPermission() {
  document.removeEventListener('click', askPermission, { capture: true });
  document.addEventListener('click', askPermission, { once: true, capture: true });
}

function beep() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  try {
    audio = audio || new AC();
    const t = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, t);
    gain.gain.exponentialRampToValueAtTime(0.001, t + 0.35);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.35);
  } catch { /* audio blocked until a gesture: the notification and the title still tell */ }
}

/** An offer arrived: `title` and `body` are plain text for the notification. */
export function offerAlert(id, title, body) {
  if (!alertsOn()) return;
  beep();
  if (!document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title, { body, tag: 'offer-' + id });
    n.onclick = () => { window.focus(); n.close(); };
  } catch { /* e.g. Android Chrome wants a service worker: the sound is enough */ }
}
