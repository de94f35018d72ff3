/*
 * index.html: the selected comment (name, text, super chat / membership badge) and the
 * character's reply typed out as deltas arrive. Fades out after ?hide= seconds of silence.
 * All data goes into the DOM as text only (textContent / text nodes).
 */
(function () {
  "use strict";
  const A = window.AituberOverlay;
  const p = A.params();
  const cfg = {
    theme: p.choice("theme", "dark", ["dark", "light", "clear"]),
    font: p.number("font", null, 6, 300), // default 28 (CSS)
    pos: p.choice("pos", "bottom", ["bottom", "top", "middle"]),
    lines: p.int("lines", null, 1, 50), // default 4 (CSS)
    hide: p.number("hide", 10, 0, 86400),
    audio: p.choice("audio", "1", ["0", "1"]), // play the voice (put audio=0 on all pages but one)
  };
  A.applyLayout(cfg);

  const $ = (id) => document.getElementById(id);
  const root = $("overlay");
  const commentBox = $("comment");
  const author = $("comment-author");
  const badge = $("comment-badge");
  const commentText = $("comment-text");
  const replyBox = $("reply");
  const replyName = $("reply-name");
  const replyWindow = $("reply-window");
  const replyText = $("reply-text");
  const replyNode = document.createTextNode("");
  replyText.appendChild(replyNode);

  const hider = A.autoHide(root, cfg.hide);

  function renderComment(comment) {
    commentBox.hidden = !comment;
    A.fillAuthor(author, comment && comment.author);
    const b = A.fillBadge(badge, comment);
    commentText.textContent = comment ? comment.text : "";
    commentText.hidden = !(comment && comment.text);
    commentBox.dataset.kind = comment ? comment.kind : "";
    if (b) commentBox.dataset.tier = b.tier;
    else delete commentBox.dataset.tier;
  }

  function renderReply(s) {
    if (replyNode.data !== s.text) replyNode.data = s.text;
    replyBox.hidden = !(s.text || s.streaming);
    replyBox.classList.toggle("is-streaming", s.streaming);
    replyBox.classList.toggle("is-empty", !s.text);
    // Older lines scroll away at the top (CSS: flex-end + overflow hidden); fade the cut edge.
    replyWindow.classList.toggle("is-clipped", replyText.offsetHeight > replyWindow.clientHeight + 1);
  }

  window.addEventListener("resize", () => renderReply(tracker.state));

  const tracker = A.tracker({
    character(c) {
      replyName.textContent = c.name;
      replyName.hidden = !c.name;
    },
    comment(s) {
      renderComment(s.comment);
      renderReply(s);
      hider.poke();
    },
    reply(s) {
      renderReply(s);
      if (s.text || s.streaming) hider.poke();
    },
    end(s) {
      renderReply(s);
      hider.poke();
    },
    cancel(s) {
      renderReply(s);
      if (s.comment) hider.poke();
      else hider.hide();
    },
    status(status) {
      if (status === "offline") hider.hide();
    },
  }, A.speaker(cfg.audio === "1"));

  A.start(tracker);
})();
