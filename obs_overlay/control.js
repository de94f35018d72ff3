/*
 * control.html: the streamer's control panel (also an OBS custom browser dock).
 *
 * Connects to ws(s)://<this page's host>/control/ws?token=<this page's ?token=>, shows what the bot
 * sends (docs/protocol.md, "Control panel") and sends commands in the MQTT control format, e.g.
 * {"command": "ban", "name": "UC..."}; the bot answers every command it carries out with a "command"
 * message. Reconnects by itself (0.5 s doubling to 10 s).
 *
 * SECURITY: comment text, viewer names and log messages only ever reach the DOM through
 * textContent (see el()); never innerHTML & co. The page's CSP forbids inline scripts.
 *
 * For tests and debugging: document.body.dataset.state ("connecting" | "open" | "closed") and
 * window.__panel = { messages, rejected, results }.
 */
(function () {
  "use strict";

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const MAX_SKIPS = 200;
  const MAX_LOG = 100;
  const MAX_LATENCY = 30;
  const PARTS = {
    paid: "投げ銭", membership: "新規メンバー", member: "メンバー", owner: "配信者", question: "質問",
    mention: "名前", age: "待ち", queued: "連投", answered: "回答済み",
  };
  const KINDS = { say: "say", thanks: "お礼 thanks", idle: "雑談 idle", answer: "" };
  const SERIES = [
    ["first_text_s", "#5ec8ff"],
    ["total_s", "#ffb454"],
    ["first_audio_s", "#7ee07e"],
  ];

  const $ = (id) => document.getElementById(id);
  const knownNames = new Map(); // viewer key (channel id or name) -> display name, for the ban list
  const debug = (window.__panel = { messages: 0, rejected: [], results: [] });
  const token = new URLSearchParams(location.search).get("token") || "";

  const state = {
    connected: false,
    character: null,
    status: "offline",
    queue: { ready: false, items: [], paused: false, idle_on: false, idle_available: false, banned: [], ng_words: [] },
    selected: null,
    current: null,
    skips: [],
    skipCounts: {},
    latency: [],
    errors: [],
    commands: [],
  };

  // ------------------------------------------------------------------------ helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clock(ts) {
    const d = new Date(ts * 1000);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
  }

  function ms(seconds) {
    return seconds === null || seconds === undefined ? "–" : `${Math.round(seconds * 1000)} ms`;
  }

  function viewerKey(author) {
    return author.channel_id || author.name;
  }

  function badgeText(comment) {
    if (!comment) return "";
    if (comment.kind === "jewels") return `Jewels ${comment.amount === null ? "" : comment.amount}`.trim();
    if (comment.amount !== null && comment.amount !== undefined) {
      return `${comment.kind === "super_sticker" ? "ステッカー" : "スパチャ"} ${comment.amount.toLocaleString()} ${comment.currency || ""}`.trim();
    }
    if (comment.kind === "membership") return "新規メンバー";
    if (comment.kind === "gift") return "メンバーギフト";
    return comment.author && comment.author.member ? "メンバー" : "";
  }

  let toastTimer = null;
  function toast(text, bad) {
    const t = $("toast");
    t.textContent = text;
    t.classList.toggle("is-bad", !!bad);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // ------------------------------------------------------------------------ the connection

  let ws = null;
  let backoff = BACKOFF_MIN_MS;

  function connect() {
    if (location.protocol !== "http:" && location.protocol !== "https:") {
      document.body.dataset.state = "closed";
      toast("ボットが表示したURL (http://…/control.html?token=…) で開いてください", true);
      return;
    }
    const url = new URL("/control/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.searchParams.set("token", token);
    document.body.dataset.state = "connecting";
    const socket = new WebSocket(url.href);
    ws = socket;
    socket.onopen = () => {
      backoff = BACKOFF_MIN_MS;
      state.connected = true;
      document.body.dataset.state = "open";
      renderHeader();
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        console.warn("[aituber control] not JSON", e);
        return;
      }
      debug.messages += 1;
      handle(message);
    };
    socket.onclose = () => {
      if (ws !== socket) return;
      state.connected = false;
      document.body.dataset.state = "closed";
      renderHeader();
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    };
  }

  function send(command) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      toast("ボットにつながっていません (not connected)", true);
      return false;
    }
    ws.send(JSON.stringify(command));
    return true;
  }

  // ------------------------------------------------------------------------ messages in

  function handle(m) {
    switch (m.type) {
      case "panel":
        state.character = m.character;
        state.status = m.status;
        state.current = m.current;
        state.skips = [];
        state.skipCounts = {};
        state.latency = m.latency || [];
        state.errors = m.errors || [];
        state.commands = m.commands || [];
        $("skips").textContent = "";
        skipRows.clear();
        takeQueue(m.queue);
        takeSkips(m.skips);
        renderAll();
        break;
      case "queue":
        takeQueue(m);
        renderQueue();
        renderHeader();
        renderTags();
        break;
      case "skips":
        takeSkips(m);
        break;
      case "status":
        state.status = m.status;
        if (m.status === "paused" || m.status === "online") state.queue.paused = m.status === "paused";
        renderHeader();
        break;
      case "comment_selected":
        state.selected = { reply_id: m.reply_id, comment: m.comment };
        break;
      case "reply_start":
        state.current = {
          reply_id: m.reply_id, comment_id: m.comment_id, text: "", spoken: "", ended: false,
          stop_reason: null, cancelled: false,
          comment: state.selected && state.selected.reply_id === m.reply_id ? state.selected.comment : null,
        };
        renderNow();
        break;
      case "reply_delta":
      case "speech":
      case "reply_end":
      case "reply_cancelled":
        if (!state.current || state.current.reply_id !== m.reply_id) break;
        if (m.type === "reply_delta") state.current.text += m.text;
        else if (m.type === "speech") state.current.spoken += m.text;
        else if (m.type === "reply_end") {
          state.current.ended = true;
          state.current.text = m.text;
          state.current.stop_reason = m.stop_reason;
        } else state.current.cancelled = true;
        renderNow();
        break;
      case "latency": {
        const i = state.latency.findIndex((e) => e.reply_id === m.reply_id);
        if (i >= 0) state.latency[i] = m;
        else state.latency.push(m);
        state.latency = state.latency.slice(-MAX_LATENCY);
        renderLatency();
        break;
      }
      case "log":
        state.errors.push(m);
        state.errors = state.errors.slice(-MAX_LOG);
        renderErrors();
        break;
      case "command":
        state.commands.push(m);
        state.commands = state.commands.slice(-MAX_LOG);
        debug.results.push(m);
        if (!m.ok) toast(`${m.command}: ${m.detail}`, true);
        renderCommands();
        break;
      case "command_rejected":
        debug.rejected.push(m.error);
        toast(m.error, true);
        break;
      default:
        break; // newer messages: ignored
    }
  }

  function takeQueue(q) {
    if (!q) return;
    state.queue = Object.assign({ items: [], banned: [], ng_words: [] }, q);
  }

  function takeSkips(m) {
    if (!m) return;
    state.skipCounts = m.counts || state.skipCounts;
    for (const skip of m.items || []) addSkip(skip);
    renderSkipFilter();
    $("skips-empty").hidden = state.skips.length > 0;
  }

  // ------------------------------------------------------------------------ rendering

  function renderAll() {
    renderHeader();
    renderNow();
    renderQueue();
    renderTags();
    renderLatency();
    renderErrors();
    renderCommands();
  }

  function renderHeader() {
    const c = state.character;
    $("character").textContent = c && c.name ? c.name : "aituber";
    const status = !state.connected ? "disconnected" : state.queue.paused ? "paused" : state.status;
    const label = { online: "● 配信中 online", paused: "Ⅱ 一時停止中 paused", offline: "○ offline",
      disconnected: "✕ 未接続 disconnected" }[status] || status;
    const pill = $("status");
    pill.dataset.status = status;
    pill.textContent = label;
    $("pause").disabled = !state.connected || state.queue.paused;
    $("resume").disabled = !state.connected || !state.queue.paused;
    $("skip").disabled = !state.connected;
    const idle = $("idle");
    idle.disabled = !state.connected || !state.queue.idle_available;
    idle.setAttribute("aria-pressed", state.queue.idle_on ? "true" : "false");
    idle.textContent = state.queue.idle_on ? "雑談 ON" : "雑談 OFF";
    idle.title = state.queue.idle_available ? "静かなときの雑談 (idle talk)" : "このキャラクターには雑談の話題 (topics) がありません";
  }

  function nameButton(author) {
    const b = el("button", "cp-name", author.name || "(名前なし)");
    b.type = "button";
    b.dataset.viewer = viewerKey(author);
    b.dataset.name = author.name;
    knownNames.set(b.dataset.viewer, author.name);
    if (author.owner) b.classList.add("is-owner");
    else if (author.moderator) b.classList.add("is-moderator");
    else if (author.member) b.classList.add("is-member");
    return b;
  }

  function renderNow() {
    const cur = state.current;
    const section = $("now");
    $("now-empty").hidden = !!cur;
    const box = $("now-comment");
    if (!cur) {
      section.dataset.phase = "none";
      box.hidden = true;
      $("now-spoken").textContent = "";
      $("now-rest").textContent = "";
      $("now-phase").textContent = "";
      return;
    }
    const comment = cur.comment;
    box.hidden = !comment;
    const author = $("now-author");
    if (comment) {
      author.textContent = comment.author.name;
      author.dataset.viewer = viewerKey(comment.author);
      author.dataset.name = comment.author.name;
      $("now-text").textContent = comment.text;
      const badge = badgeText(comment);
      $("now-badge").textContent = badge;
      $("now-badge").hidden = !badge;
    }
    const spoken = cur.text.startsWith(cur.spoken) ? cur.spoken : "";
    $("now-spoken").textContent = spoken;
    $("now-rest").textContent = cur.text.slice(spoken.length);
    const phase = cur.cancelled ? "cancelled" : !cur.ended ? "generating" : cur.spoken && cur.spoken.length < cur.text.length ? "speaking" : "done";
    section.dataset.phase = phase;
    const kind = KINDS[kindOf(cur.comment_id)];
    $("now-phase").textContent = ({ generating: "生成中", speaking: "発話中", done: "完了", cancelled: "取り消し" }[phase])
      + (cur.stop_reason && cur.stop_reason !== "stop" ? ` (${cur.stop_reason})` : "") + (kind ? ` · ${kind}` : "");
  }

  function kindOf(commentId) {
    if (commentId === "say") return "say";
    if (commentId.startsWith("thanks:")) return "thanks";
    if (commentId.startsWith("idle:")) return "idle";
    return "answer";
  }

  // The queue is updated in place (one row per comment id), so that a button is never replaced
  // between a press and its release.
  const queueRows = new Map();

  function queueRow(item) {
    const li = el("li", "cp-row");
    li.dataset.id = item.comment.id;
    const head = el("div", "cp-row-head");
    const name = nameButton(item.comment.author);
    const badge = el("span", "cp-badge");
    const score = el("span", "cp-score");
    const next = el("button", "cp-btn cp-small", "次に答える");
    next.type = "button";
    next.dataset.action = "next";
    next.title = "このコメントに次に答える (answer next)";
    next.addEventListener("click", () => send({ command: "next", comment_id: item.comment.id }));
    head.append(name, badge, score, next);
    const text = el("p", "cp-text", item.comment.text);
    const parts = el("div", "cp-parts");
    li.append(head, text, parts);
    return { li, name, badge, score, next, parts, key: "" };
  }

  function renderQueue() {
    const q = state.queue;
    const list = $("queue");
    const seen = new Set();
    q.items.forEach((item, i) => {
      const id = item.comment.id;
      seen.add(id);
      let row = queueRows.get(id);
      if (!row) {
        row = queueRow(item);
        queueRows.set(id, row);
      }
      const key = JSON.stringify([item.score, item.parts, item.promoted]);
      if (row.key !== key) {
        row.key = key;
        const b = badgeText(item.comment);
        row.badge.textContent = b;
        row.badge.hidden = !b;
        row.score.textContent = item.score.toFixed(1);
        row.li.classList.toggle("is-promoted", !!item.promoted);
        row.next.disabled = !!item.promoted;
        row.next.textContent = item.promoted ? "次 ▶" : "次に答える";
        row.parts.textContent = "";
        for (const [why, points] of item.parts) {
          const chip = el("span", `cp-part ${points < 0 ? "is-minus" : "is-plus"}`,
            `${PARTS[why] || why} ${points > 0 ? "+" : ""}${points.toFixed(1)}`);
          chip.dataset.part = why;
          chip.title = why;
          row.parts.append(chip);
        }
      }
      if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] || null);
    });
    for (const [id, row] of queueRows) {
      if (!seen.has(id)) {
        row.li.remove();
        queueRows.delete(id);
      }
    }
    $("queue-count").textContent = String(q.items.length);
    $("queue-empty").hidden = q.items.length > 0;
    const notes = [];
    if (q.thanks_pending) notes.push(`お礼待ち ${q.thanks_pending}`);
    if (q.says_pending) notes.push(`say待ち ${q.says_pending}`);
    if (q.paused) notes.push("一時停止中: 「次に答える」で選んだコメントだけ答えます");
    if (!q.ready) notes.push("ボットの開始待ち");
    $("queue-note").textContent = notes.join(" · ");
  }

  const skipRows = new Set();

  function addSkip(skip) {
    state.skips.unshift(skip);
    const li = el("li", "cp-row cp-skip");
    li.dataset.reason = skip.reason;
    li.dataset.id = skip.comment.id;
    const head = el("div", "cp-row-head");
    head.append(el("span", "cp-time", clock(skip.ts)), el("span", "cp-reason", skip.reason),
      nameButton(skip.comment.author));
    li.append(head, el("p", "cp-text", skip.comment.text));
    const filter = $("skip-filter").value;
    li.hidden = !!filter && filter !== skip.reason;
    const list = $("skips");
    list.insertBefore(li, list.firstChild);
    skipRows.add(li);
    while (state.skips.length > MAX_SKIPS) {
      state.skips.pop();
      const last = list.lastChild;
      if (last) {
        skipRows.delete(last);
        last.remove();
      }
    }
  }

  function renderSkipFilter() {
    const select = $("skip-filter");
    const counts = state.skipCounts;
    const reasons = Object.keys(counts).sort((a, b) => counts[b] - counts[a] || a.localeCompare(b));
    const existing = new Map([...select.options].map((o) => [o.value, o]));
    for (const reason of reasons) {
      let option = existing.get(reason);
      if (!option) {
        option = el("option");
        option.value = reason;
        select.append(option);
      }
      option.textContent = `${reason} (${counts[reason]})`;
    }
  }

  function applySkipFilter() {
    const filter = $("skip-filter").value;
    for (const li of skipRows) li.hidden = !!filter && li.dataset.reason !== filter;
  }

  function renderTags() {
    const banned = $("banned");
    banned.textContent = "";
    for (const viewer of state.queue.banned || []) {
      const li = el("li", "cp-tag");
      li.dataset.viewer = viewer;
      li.append(el("span", "", knownNames.get(viewer) || viewer));
      const b = el("button", "cp-btn cp-small", "解除");
      b.type = "button";
      b.dataset.action = "unban";
      b.title = "BAN解除 (unban)";
      b.addEventListener("click", () => send({ command: "unban", name: viewer }));
      li.append(b);
      banned.append(li);
    }
    const words = $("ng-words");
    words.textContent = "";
    for (const word of state.queue.ng_words || []) words.append(el("li", "cp-tag", word));
  }

  function renderLatency() {
    const canvas = $("latency");
    const width = canvas.clientWidth || 300;
    const height = canvas.clientHeight || 150;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const data = state.latency;
    let max = 0;
    for (const e of data) for (const [key] of SERIES) if (e[key] !== null && e[key] !== undefined) max = Math.max(max, e[key]);
    const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 60].find((s) => s * 4 >= max) || Math.ceil(max / 4);
    const top = Math.max(step * 4, 0.1);
    const left = 44, right = 8, up = 8, down = 18;
    const w = width - left - right, h = height - up - down;
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#8a93a3";
    g.strokeStyle = "rgba(255,255,255,0.08)";
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = up + h - (h * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(left + w, y);
      g.stroke();
      const v = step * i;
      g.fillText(v >= 1 ? `${v} s` : `${Math.round(v * 1000)} ms`, 2, y + 4);
    }
    const n = Math.max(data.length, 2);
    const x = (i) => left + (w * i) / (n - 1);
    const y = (v) => up + h - (h * Math.min(v, top)) / top;
    for (const [key, color] of SERIES) {
      g.strokeStyle = color;
      g.fillStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      let drawing = false;
      data.forEach((e, i) => {
        const v = e[key];
        if (v === null || v === undefined) {
          drawing = false;
          return;
        }
        if (drawing) g.lineTo(x(i), y(v));
        else g.moveTo(x(i), y(v));
        drawing = true;
      });
      g.stroke();
      data.forEach((e, i) => {
        const v = e[key];
        if (v === null || v === undefined) return;
        g.beginPath();
        g.arc(x(i), y(v), 2.5, 0, Math.PI * 2);
        g.fill();
      });
    }
    g.fillStyle = "#8a93a3";
    g.fillText(data.length ? `${data.length} replies` : "no replies yet", left, height - 4);
    const last = data[data.length - 1];
    for (const li of $("latency-legend").children) {
      li.querySelector("b").textContent = last ? ms(last[li.dataset.series]) : "–";
    }
    canvas.dataset.points = String(data.length);
  }

  function renderErrors() {
    const list = $("errors");
    list.textContent = "";
    for (const e of state.errors.slice().reverse()) {
      const li = el("li", `cp-row is-${String(e.level).toLowerCase()}`);
      li.append(el("span", "cp-time", clock(e.ts)), el("span", "cp-level", e.level), el("span", "cp-logger", e.logger),
        el("span", "cp-msg", e.message));
      list.append(li);
    }
    $("error-count").textContent = String(state.errors.length);
    $("errors-empty").hidden = state.errors.length > 0;
  }

  function renderCommands() {
    const list = $("commands");
    list.textContent = "";
    for (const c of state.commands.slice(-20).reverse()) {
      const li = el("li", `cp-row ${c.ok ? "is-ok" : "is-bad"}`);
      li.dataset.command = c.command;
      const who = c.source === "chat" && c.author ? `chat ${c.author}` : c.source;
      li.append(el("span", "cp-time", clock(c.ts)), el("span", "cp-source", who),
        el("span", "cp-cmd", `${c.ok ? "✓" : "✗"} ${c.command}${c.arg ? " " + c.arg : ""}`));
      if (c.detail) li.append(el("span", "cp-detail", c.detail));
      list.append(li);
    }
  }

  // ------------------------------------------------------------------------ viewer menu (ban/unban)

  let menuViewer = null;

  function openMenu(button) {
    const viewer = button.dataset.viewer;
    if (!viewer) return;
    menuViewer = viewer;
    knownNames.set(viewer, button.dataset.name || viewer);
    const menu = $("viewer-menu");
    $("menu-name").textContent = button.dataset.name || viewer;
    $("menu-id").textContent = viewer !== button.dataset.name ? viewer : "";
    const banned = (state.queue.banned || []).includes(viewer);
    $("menu-ban").hidden = banned;
    $("menu-unban").hidden = !banned;
    menu.hidden = false;
    const r = button.getBoundingClientRect();
    const mw = menu.offsetWidth, mh = menu.offsetHeight;
    menu.style.left = `${Math.max(4, Math.min(r.left, window.innerWidth - mw - 4))}px`;
    menu.style.top = `${Math.max(4, r.bottom + 4 + mh > window.innerHeight ? r.top - mh - 4 : r.bottom + 4)}px`;
  }

  function closeMenu() {
    $("viewer-menu").hidden = true;
    menuViewer = null;
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target.closest(".cp-name") : null;
    if (target) {
      openMenu(target);
      return;
    }
    if (!$("viewer-menu").contains(event.target)) closeMenu();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeMenu();
  });
  $("menu-ban").addEventListener("click", () => {
    if (menuViewer !== null && send({ command: "ban", name: menuViewer })) closeMenu();
  });
  $("menu-unban").addEventListener("click", () => {
    if (menuViewer !== null && send({ command: "unban", name: menuViewer })) closeMenu();
  });
  $("menu-close").addEventListener("click", closeMenu);

  // ------------------------------------------------------------------------ actions

  $("pause").addEventListener("click", () => send({ command: "pause" }));
  $("resume").addEventListener("click", () => send({ command: "resume" }));
  $("skip").addEventListener("click", () => send({ command: "skip" }));
  $("idle").addEventListener("click", () => send({ command: "idle", arg: state.queue.idle_on ? "off" : "on" }));
  $("say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("say-text");
    const text = input.value.trim();
    if (text && send({ command: "say", text })) input.value = "";
  });
  $("ng-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("ng-word");
    const word = input.value.trim();
    if (word && send({ command: "ng", word })) input.value = "";
  });
  $("skip-filter").addEventListener("change", applySkipFilter);
  window.addEventListener("resize", renderLatency);

  renderAll();
  connect();
})();
