/*
 * subtitles.html: only the character's reply, typed out as deltas arrive; the newest
 * --ov-lines lines stay visible. Text goes into the DOM as a text node only.
 */
(function () {
  "use strict";
  const A = window.AituberOverlay;
  const p = A.params();
  const cfg = {
    theme: p.choice("theme", "clear", ["dark", "light", "clear"]),
    font: p.number("font", null, 6, 300), // default 44 (CSS)
    pos: p.choice("pos", "bottom", ["bottom", "top", "middle"]),
    lines: p.int("lines", null, 1, 50), // default 2 (CSS)
    hide: p.number("hide", 10, 0, 86400),
    audio: p.choice("audio", "1", ["0", "1"]), // play the voice (put audio=0 on all pages but one)
  };
  A.applyLayout(cfg);

  const root = document.getElementById("subs");
  const line = document.getElementById("subs-text");
  const node = document.createTextNode("");
  line.appendChild(node);
  const hider = A.autoHide(root, cfg.hide);

  function render(s) {
    if (node.data !== s.text) node.data = s.text;
    line.hidden = !s.text;
    if (s.text) hider.poke();
    else hider.hide();
  }

  const tracker = A.tracker({
    comment: render,
    reply: render,
    end: render,
    cancel: render,
    status(status) {
      if (status === "offline") hider.hide();
    },
  }, A.speaker(cfg.audio === "1"));
  A.start(tracker);
})();
