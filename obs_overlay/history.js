/*
 * history.html: recent answered comments (name, comment, reply), newest on top, at most ?n=.
 * An entry is added when its reply ends with some text (not cancelled); with ?live=1 it shows
 * up as soon as the comment is selected and fills in as the reply streams.
 * All data goes into the DOM as text only (textContent / text nodes).
 */
(function () {
  "use strict";
  const A = window.AituberOverlay;
  const p = A.params();
  const cfg = {
    theme: p.choice("theme", "dark", ["dark", "light", "clear"]),
    font: p.number("font", null, 6, 300), // default 20 (CSS)
    pos: p.choice("pos", "top", ["bottom", "top", "middle"]),
    hide: p.number("hide", 0, 0, 86400),
    n: p.int("n", 5, 1, 100),
    live: p.choice("live", "0", ["0", "1", "true", "false"]),
  };
  const live = cfg.live === "1" || cfg.live === "true";
  A.applyLayout(cfg);

  const list = document.getElementById("history");
  const hider = A.autoHide(list, cfg.hide);
  if (cfg.hide === 0) hider.poke();
  let speaker = "";
  const byReply = new Map(); // reply id -> { li, replyNode }

  function makeEntry(s) {
    const li = A.el("li", "ov-entry");
    li.dataset.replyId = s.replyId === null ? "" : s.replyId;
    const c = s.comment;
    if (c) {
      li.dataset.kind = c.kind;
      const head = A.el("header", "ov-comment-head");
      const author = A.el("span", "ov-author");
      A.fillAuthor(author, c.author);
      const badge = A.el("span", "ov-badge");
      const b = A.fillBadge(badge, c);
      if (b) li.dataset.tier = b.tier;
      head.append(author, badge);
      li.appendChild(head);
      if (c.text) li.appendChild(A.el("p", "ov-comment-text", c.text));
    }
    const reply = A.el("p", "ov-entry-reply");
    if (speaker) reply.appendChild(A.el("span", "ov-entry-speaker", speaker));
    const replyNode = document.createTextNode(s.text);
    reply.appendChild(replyNode);
    li.appendChild(reply);
    return { li, replyNode };
  }

  function upsert(s) {
    let entry = byReply.get(s.replyId);
    if (!entry) {
      entry = makeEntry(s);
      byReply.set(s.replyId, entry);
      list.insertBefore(entry.li, list.firstChild);
      while (list.children.length > cfg.n) {
        const old = list.lastElementChild;
        byReply.forEach((v, k) => {
          if (v.li === old) byReply.delete(k);
        });
        old.remove();
      }
    } else if (entry.replyNode.data !== s.text) {
      entry.replyNode.data = s.text;
    }
    entry.li.classList.toggle("is-streaming", s.streaming);
    hider.poke();
  }

  function remove(replyId) {
    const entry = byReply.get(replyId);
    if (!entry) return;
    entry.li.remove();
    byReply.delete(replyId);
  }

  const tracker = A.tracker({
    character(c) {
      speaker = c.name;
    },
    comment(s) {
      if (live) upsert(s);
    },
    reply(s) {
      if (live && byReply.has(s.replyId)) upsert(s);
    },
    end(s, stopReason) {
      if (stopReason === "cancelled" || !s.text.trim()) remove(s.replyId);
      else upsert(s);
    },
    cancel(s) {
      remove(s.replyId);
    },
  }, null, { followVoice: false }); // finished replies as they are, not as far as they are spoken
  A.start(tracker.handle);
})();
