/*
 * aituber OBS overlay: shared code for index.html, subtitles.html and history.html.
 *
 * Classic script (not an ES module) so that the pages also work when opened as local files
 * (file://), where Chromium refuses module scripts. Everything lives under window.AituberOverlay.
 *
 * What it does:
 *   - reads URL parameters (with validation and defaults),
 *   - works out the WebSocket URL (?ws=..., else ws(s)://<page host>/ws), passing ?token= on,
 *   - keeps the connection up, reconnecting with exponential backoff (0.5 s doubling to 10 s,
 *     reset after a successful connect),
 *   - follows the reply protocol (state / comment_selected / reply_* / status) and calls the page,
 *   - speaks: with ?audio=1 on the WebSocket it gets each spoken clause's audio (binary frames) and
 *     plays the clauses in order with the Web Audio API; when the bot has a voice, the reply text is
 *     shown clause by clause as each one starts playing (see speaker() and tracker()),
 *   - exposes document.body.dataset.state ("connecting" | "open" | "closed"),
 *     document.body.dataset.audio ("off" | "on" | "blocked") and window.__overlay =
 *     { messages, lastReply, speech } for tests and debugging.
 *
 * SECURITY: viewer and model text only ever reaches the DOM through textContent /
 * createTextNode (see text() and el() below). Never use innerHTML & co. with data.
 */
(function (global) {
  "use strict";

  const LOG = "[aituber overlay]";
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;

  const debug = (global.__overlay = global.__overlay || { messages: 0, lastReply: "", speech: [] });

  // ---------------------------------------------------------------- URL parameters

  function params(search) {
    const sp = new URLSearchParams(search === undefined ? global.location.search : search);
    const raw = (name) => {
      const v = sp.get(name);
      return v === null || v.trim() === "" ? null : v.trim();
    };
    const bad = (name, value, def) => {
      console.warn(`${LOG} ignoring ?${name}=${value}; using ${def}`);
      return def;
    };
    return {
      has: (name) => raw(name) !== null,
      string(name, def) {
        const v = raw(name);
        return v === null ? def : v;
      },
      number(name, def, min, max) {
        const v = raw(name);
        if (v === null) return def;
        const n = Number(v);
        if (!Number.isFinite(n) || n < min || n > max) return bad(name, v, def);
        return n;
      },
      int(name, def, min, max) {
        const v = raw(name);
        if (v === null) return def;
        const n = Number(v);
        if (!Number.isInteger(n) || n < min || n > max) return bad(name, v, def);
        return n;
      },
      choice(name, def, allowed) {
        const v = raw(name);
        if (v === null) return def;
        const lower = v.toLowerCase();
        return allowed.includes(lower) ? lower : bad(name, v, def);
      },
    };
  }

  /** Set body data attributes and CSS variables from the parsed config. */
  function applyLayout(cfg) {
    const body = document.body;
    const root = document.documentElement.style;
    if (cfg.theme) body.dataset.theme = cfg.theme;
    if (cfg.pos) body.dataset.pos = cfg.pos;
    if (cfg.font) root.setProperty("--ov-font-size", `${cfg.font}px`);
    if (cfg.lines) root.setProperty("--ov-lines", String(cfg.lines));
  }

  /**
   * The WebSocket URL: ?ws=... when given (ws:, wss:, or http(s): which is mapped to ws(s):),
   * else the page's own host with path /ws. Returns null when none can be had (file:// without ?ws).
   * The page's ?token= (needed when the bot listens beyond this machine) is passed on, unless the
   * ?ws= URL carries its own.
   */
  function resolveWsUrl(search, location, audio) {
    const loc = location || global.location;
    const p = params(search === undefined ? loc.search : search);
    const token = p.string("token", null);
    const withToken = (href) => {
      if (token === null && !audio) return href;
      const url = new URL(href);
      if (token !== null && !url.searchParams.has("token")) url.searchParams.set("token", token);
      if (audio) url.searchParams.set("audio", "1");
      return url.href;
    };
    const given = p.string("ws", null);
    if (given !== null) {
      let url;
      try {
        url = new URL(given, loc.href);
      } catch (e) {
        console.error(`${LOG} ?ws=${given} is not a URL`);
        return null;
      }
      if (url.protocol === "http:") url.protocol = "ws:";
      else if (url.protocol === "https:") url.protocol = "wss:";
      if (url.protocol !== "ws:" && url.protocol !== "wss:") {
        console.error(`${LOG} ?ws=${given} must be a ws:// or wss:// URL`);
        return null;
      }
      return withToken(url.href);
    }
    if (loc.protocol === "http:" || loc.protocol === "https:") {
      return withToken(`${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws`);
    }
    return null;
  }

  /** Delay before reconnect attempt number `attempt` (0-based): 0.5 s doubling, at most 10 s. */
  function backoffMs(attempt) {
    return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, Math.max(0, attempt)));
  }

  // ---------------------------------------------------------------- connection

  function setState(state) {
    document.body.dataset.state = state;
  }

  /**
   * Open `url` and keep it open. `onMessage(obj)` gets each JSON object frame, `onBinary(buffer)`
   * (optional) each binary frame as an ArrayBuffer. Returns { close() } which stops reconnecting.
   */
  function connect(url, onMessage, onBinary) {
    let attempt = 0;
    let socket = null;
    let timer = null;
    let stopped = false;

    function open() {
      timer = null;
      if (stopped) return;
      setState("connecting");
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        console.error(`${LOG} cannot open ${url}:`, e);
        setState("closed");
        return; // a malformed URL does not get better by retrying
      }
      socket = ws;
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        if (socket !== ws) return;
        attempt = 0;
        setState("open");
        console.info(`${LOG} connected to ${url}`);
      };
      ws.onmessage = (ev) => {
        if (socket !== ws) return;
        debug.messages += 1;
        if (typeof ev.data !== "string") {
          if (onBinary && ev.data instanceof ArrayBuffer) {
            try {
              onBinary(ev.data);
            } catch (e) {
              console.error(`${LOG} failed to handle a binary frame:`, e);
            }
          }
          return;
        }
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (e) {
          console.warn(`${LOG} ignoring a frame that is not JSON`);
          return;
        }
        if (!msg || typeof msg !== "object" || Array.isArray(msg)) return;
        try {
          onMessage(msg);
        } catch (e) {
          console.error(`${LOG} failed to handle ${msg.type}:`, e);
        }
      };
      ws.onerror = () => {
        /* onclose follows and schedules the retry */
      };
      ws.onclose = () => {
        if (socket !== ws) return;
        socket = null;
        setState("closed");
        if (stopped) return;
        const delay = backoffMs(attempt);
        attempt += 1;
        timer = setTimeout(open, delay);
      };
    }

    open();
    return {
      close() {
        stopped = true;
        if (timer !== null) clearTimeout(timer);
        if (socket) socket.close();
        socket = null;
        setState("closed");
      },
    };
  }

  /**
   * Resolve the URL and connect, or warn and show nothing. `onMessage` is a function, or a tracker
   * ({ handle, handleBinary, wantsAudio }): a tracker with a speaker that plays asks for audio.
   */
  function start(onMessage) {
    const t = typeof onMessage === "function" ? { handle: onMessage } : onMessage;
    const url = resolveWsUrl(undefined, undefined, Boolean(t.wantsAudio));
    if (url === null) {
      setState("closed");
      if (global.location.protocol === "file:") {
        console.warn(
          `${LOG} opened as a local file without ?ws=...; nothing will be shown. ` +
            "Add ?ws=ws://127.0.0.1:PORT/ws to the URL."
        );
      }
      return null;
    }
    return connect(url, t.handle, t.handleBinary);
  }


  // ---------------------------------------------------------------- speech audio

  const AUDIO_FRAME_HEADER = 4; // bytes: big-endian length of the JSON header that follows

  /** { header, audio } from a binary speech frame (docs/protocol.md), or null. */
  function parseAudioFrame(buffer) {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < AUDIO_FRAME_HEADER) return null;
    const size = new DataView(buffer).getUint32(0, false);
    if (AUDIO_FRAME_HEADER + size > buffer.byteLength) return null;
    let header;
    try {
      header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, AUDIO_FRAME_HEADER, size)));
    } catch (e) {
      return null;
    }
    if (!header || header.type !== "speech_audio") return null;
    return { header, audio: buffer.slice(AUDIO_FRAME_HEADER + size) };
  }

  /**
   * Plays the clauses' audio, one after the other, and calls each clause's onStart when its audio
   * starts (at once for a clause without audio). enabled=false: no audio, onStart at once.
   * Each clause is logged in window.__overlay.speech: { replyId, index, text, duration, received,
   * startedAt, audioAt, subtitleAt, endedAt, stopReceivedAt, stopped, audible } (performance.now() ms).
   */
  function speaker(enabled) {
    let ctx = null;
    const decoded = new Map(); // "rid#index" -> Promise<AudioBuffer | null>
    const queue = [];
    let current = null; // { item, source }
    const key = (rid, index) => `${rid}#${index}`;
    document.body.dataset.audio = enabled ? "on" : "off";

    function context() {
      if (ctx === null) {
        const Ctx = global.AudioContext || global.webkitAudioContext;
        if (!Ctx) return null;
        ctx = new Ctx();
        ctx.onstatechange = () => {
          document.body.dataset.audio = ctx.state === "running" ? "on" : "blocked";
          if (ctx.state === "running") hint(false);
        };
      }
      return ctx;
    }

    // A browser that blocks sound until the page is clicked (OBS does not): say so, resume on a click.
    let hintNode = null;
    function hint(show) {
      if (show && hintNode === null) {
        hintNode = el("button", "ov-sound-hint", "🔊 クリックで音声オン / click for sound");
        hintNode.type = "button";
        document.body.appendChild(hintNode);
        const resume = () => {
          if (ctx) ctx.resume();
        };
        global.addEventListener("pointerdown", resume);
        global.addEventListener("keydown", resume);
      }
      if (hintNode) hintNode.hidden = !show;
    }

    function audio(buffer) {
      if (!enabled) return;
      const frame = parseAudioFrame(buffer);
      if (frame === null) {
        console.warn(`${LOG} ignoring a binary frame that is not speech audio`);
        return;
      }
      const c = context();
      if (c === null) return;
      const k = key(idOf(frame.header.reply_id), frame.header.index);
      decoded.set(
        k,
        c.decodeAudioData(frame.audio).catch((e) => {
          console.warn(`${LOG} cannot decode the audio of ${k}:`, e);
          return null;
        })
      );
      if (decoded.size > 64) decoded.delete(decoded.keys().next().value); // never grows without bound
    }

    /** A `speech` message: play its clause after the ones before it. */
    function speech(msg, onStart) {
      const rid = idOf(msg.reply_id);
      const k = key(rid, msg.index);
      const entry = {
        replyId: rid, index: msg.index, text: str(msg.text), duration: Number(msg.duration_s) || 0,
        received: performance.now(), startedAt: null, audioAt: null, subtitleAt: null, endedAt: null,
        stopReceivedAt: null, stopped: false, audible: false,
      };
      debug.speech.push(entry);
      if (debug.speech.length > 500) debug.speech.shift();
      const buffer = enabled ? decoded.get(k) || null : null; // its binary frame came first, or not at all
      decoded.delete(k);
      queue.push({ rid, entry, buffer, onStart });
      pump();
    }

    async function pump() {
      if (current !== null || queue.length === 0) return;
      const item = queue.shift();
      current = { item, source: null, timer: null };
      const buf = item.buffer ? await item.buffer : null;
      if (current === null || current.item !== item) return; // stopped while decoding
      const entry = item.entry;
      const c = buf ? context() : null;
      entry.startedAt = performance.now();
      if (c !== null && c.state === "running") {
        const source = c.createBufferSource();
        source.buffer = buf;
        source.connect(c.destination);
        current.source = source;
        source.onended = () => finish(item);
        source.start();
        entry.audible = true;
        entry.audioAt = performance.now() + (c.outputLatency || c.baseLatency || 0) * 1000;
        // Never stall the queue on an onended that does not come.
        current.timer = setTimeout(() => finish(item), (buf.duration + 1) * 1000);
      } else {
        if (buf && c !== null) hint(true);
        current.timer = setTimeout(() => finish(item), 0);
      }
      item.onStart(entry);
      entry.subtitleAt = performance.now();
    }

    function finish(item) {
      if (current === null || current.item !== item) return;
      if (current.timer !== null) clearTimeout(current.timer);
      item.entry.endedAt = performance.now();
      current = null;
      pump();
    }

    /** Stop the reply's clause that plays and drop its queued ones (`!skip`, a withdrawn reply). */
    function stop(rid) {
      const now = performance.now();
      for (let i = queue.length - 1; i >= 0; i -= 1) {
        if (queue[i].rid === rid) {
          queue[i].entry.stopReceivedAt = now;
          queue[i].entry.stopped = true;
          queue.splice(i, 1);
        }
      }
      for (const k of Array.from(decoded.keys())) if (k.startsWith(`${rid}#`)) decoded.delete(k);
      if (current !== null && current.item.rid === rid) {
        const item = current.item;
        item.entry.stopReceivedAt = now;
        item.entry.stopped = true;
        if (current.source !== null) {
          current.source.onended = null;
          current.source.stop();
        }
        finish(item);
      }
    }

    return { enabled, audio, speech, stop };
  }

  // ---------------------------------------------------------------- protocol

  const str = (v) => (typeof v === "string" ? v : v === null || v === undefined ? "" : String(v));
  const idOf = (v) => (v === null || v === undefined ? null : String(v));

  function normalizeComment(c) {
    if (!c || typeof c !== "object") return null;
    const a = c.author && typeof c.author === "object" ? c.author : { name: c.author };
    const amount = typeof c.amount === "number" && Number.isFinite(c.amount) ? c.amount : null;
    return {
      id: idOf(c.id),
      text: str(c.text),
      kind: str(c.kind) || "text",
      amount,
      currency: typeof c.currency === "string" && c.currency ? c.currency.toUpperCase() : null,
      giftName: typeof c.gift_name === "string" ? c.gift_name : "",
      author: {
        name: str(a.name),
        channelId: str(a.channel_id),
        owner: a.owner === true,
        moderator: a.moderator === true,
        member: a.member === true,
        verified: a.verified === true,
      },
    };
  }

  /**
   * Follows the reply being shown. Handlers (all optional):
   *   comment(s)          a new comment was selected (s.comment may be null); s.text is the
   *                       reply so far ("" except when resuming from a state message)
   *   reply(s, delta)     s.text changed (delta: the appended piece, or null when replaced)
   *   end(s, stopReason)  the reply finished; s.text is final
   *   cancel(s)           the reply was cancelled; s.text is ""
   *   character(c)        { id, name } from the state message
   *   status(status)      "online" | "paused" | "offline"
   * s = { replyId, comment, text, streaming, ended, stopReason, character, status, voice, spoken }.
   *
   * With a voice (s.voice: the bot speaks), s.text is what has been spoken: each clause is added
   * when its audio starts (`speech` messages, played by `player`, a speaker()), and the deltas are
   * not shown ahead of the voice. Without one (or with options.followVoice false: the history),
   * s.text follows the deltas as they come.
   */
  function tracker(h, player, options) {
    const voice = player || speaker(false);
    const follow = !options || options.followVoice !== false;
    const synced = () => s.voice && follow; // show the text as it is spoken
    const s = {
      replyId: null,
      comment: null,
      text: "",
      streaming: false,
      ended: false,
      stopReason: null,
      character: null,
      status: null,
      voice: false,
      spoken: "",
    };
    const call = (name, ...args) => {
      if (typeof h[name] === "function") h[name](s, ...args);
    };
    const setText = (text) => {
      s.text = text;
      debug.lastReply = text;
    };
    const select = (replyId, comment, text, streaming) => {
      s.replyId = replyId;
      s.comment = comment;
      s.streaming = streaming;
      s.ended = false;
      s.stopReason = null;
      s.spoken = synced() ? text : "";
      setText(text);
      call("comment");
    };

    function handle(msg) {
      switch (msg.type) {
        case "state": {
          if (typeof msg.status === "string") handle({ type: "status", status: msg.status });
          if (msg.character && typeof msg.character === "object") {
            s.character = { id: str(msg.character.id), name: str(msg.character.name) };
            if (typeof h.character === "function") h.character(s.character, s);
          }
          if ("voice" in msg) s.voice = Boolean(msg.voice && typeof msg.voice === "object");
          const cur = msg.current;
          if (cur && typeof cur === "object") {
            const rid = idOf(cur.reply_id);
            const text = synced() ? str(cur.spoken) : str(cur.text);
            if (rid !== null && rid === s.replyId && s.comment) {
              // Reconnected during the same reply: catch up without flashing.
              if (text !== s.text) {
                setText(text);
                s.streaming = true;
                call("reply", null);
              }
            } else {
              select(rid, normalizeComment(cur.comment), text, !(synced() && cur.ended === true));
              s.ended = synced() && cur.ended === true;
              call("reply", null);
            }
          } else if (s.streaming) {
            // Nothing in progress any more (finished while we were away).
            s.streaming = false;
            call("reply", null);
          }
          break;
        }
        case "comment_selected":
          select(idOf(msg.reply_id), normalizeComment(msg.comment), "", true);
          break;
        case "reply_start": {
          const rid = idOf(msg.reply_id);
          if (rid !== s.replyId) {
            const cid = idOf(msg.comment_id);
            const keep = s.comment && cid !== null && s.comment.id === cid ? s.comment : null;
            select(rid, keep, "", true);
          }
          s.streaming = true;
          call("reply", null);
          break;
        }
        case "reply_delta": {
          if (idOf(msg.reply_id) !== s.replyId || typeof msg.text !== "string" || s.ended) break;
          if (synced()) break; // shown clause by clause as it is spoken
          s.streaming = true;
          setText(s.text + msg.text);
          call("reply", msg.text);
          break;
        }
        case "reply_end": {
          if (idOf(msg.reply_id) !== s.replyId) break;
          if (s.ended && s.stopReason === "cancelled") break; // withdrawn: stays cleared
          if (typeof msg.text === "string" && !synced()) setText(msg.text);
          s.streaming = false;
          s.ended = true;
          s.stopReason = str(msg.stop_reason) || "stop";
          call("reply", null);
          call("end", s.stopReason);
          break;
        }
        case "reply_cancelled": {
          const rid = idOf(msg.reply_id);
          if (rid !== null) voice.stop(rid); // the voice stops at once, and what was queued is dropped
          if (rid !== null && rid !== s.replyId) break;
          setText("");
          s.streaming = false;
          s.ended = true;
          s.stopReason = "cancelled";
          call("cancel");
          break;
        }
        case "voice":
          s.voice = true;
          break;
        case "speech": {
          const rid = idOf(msg.reply_id);
          if (rid === null) break;
          if (s.replyId === null) select(rid, null, "", true); // joined in the middle of a reply
          if (rid !== s.replyId || s.stopReason === "cancelled") break;
          const piece = str(msg.text);
          voice.speech(msg, () => {
            if (s.replyId !== rid || s.stopReason === "cancelled") return;
            s.spoken += piece;
            if (synced()) {
              setText(s.spoken);
              call("reply", piece);
            }
          });
          break;
        }
        case "status": {
          s.status = str(msg.status);
          document.body.dataset.status = s.status;
          if (typeof h.status === "function") h.status(s.status, s);
          break;
        }
        default:
          // reply_sentence (for TTS), skipped, and anything newer: not for the overlay.
          break;
      }
    }

    return { handle, handleBinary: voice.audio, wantsAudio: voice.enabled, state: s };
  }

  // ---------------------------------------------------------------- badges

  // Rough value of one unit in JPY, only to pick a colour tier like YouTube does.
  const JPY_PER_UNIT = {
    JPY: 1, USD: 150, EUR: 160, GBP: 190, AUD: 100, CAD: 110, NZD: 90, CHF: 170, HKD: 19,
    TWD: 4.7, KRW: 0.11, CNY: 21, SGD: 110, PHP: 2.6, THB: 4.2, MYR: 33, IDR: 0.0095,
    INR: 1.8, VND: 0.006, BRL: 28, MXN: 8, ARS: 0.15, CLP: 0.16, COP: 0.037, PEN: 40,
    RUB: 1.6, SEK: 14, NOK: 14, DKK: 21, PLN: 38, CZK: 6.5, HUF: 0.4, TRY: 4.5, ILS: 40,
    SAR: 40, AED: 41, ZAR: 8,
  };

  /** Colour tier of a paid message, by its approximate value in JPY (YouTube's tiers). */
  function tierOf(amount, currency) {
    if (typeof amount !== "number" || !Number.isFinite(amount)) return "blue";
    const rate = JPY_PER_UNIT[currency || "JPY"] || 1;
    const jpy = amount * rate;
    if (jpy >= 10000) return "red";
    if (jpy >= 5000) return "magenta";
    if (jpy >= 2000) return "orange";
    if (jpy >= 1000) return "yellow";
    if (jpy >= 500) return "green";
    if (jpy >= 200) return "cyan";
    return "blue";
  }

  /** A Jewels gift's badge: "Gold coin · 10 Jewels", or whichever of the two is known. */
  function jewelsLabel(comment) {
    const n = comment.amount;
    const price = typeof n === "number" && n > 0 ? `${n.toLocaleString("ja-JP")} Jewels` : "";
    return [comment.giftName, price].filter(Boolean).join(" · ") || "Jewels";
  }

  function formatAmount(amount, currency) {
    if (typeof amount !== "number" || !Number.isFinite(amount)) return "";
    if (currency) {
      try {
        return new Intl.NumberFormat("ja-JP", { style: "currency", currency }).format(amount);
      } catch (e) {
        /* unknown currency code: fall through */
      }
      return `${currency} ${amount.toLocaleString("ja-JP")}`;
    }
    return amount.toLocaleString("ja-JP");
  }

  /** { cls, tier, label } for the comment's badge, or null for a plain comment. */
  function badgeOf(comment) {
    if (!comment) return null;
    switch (comment.kind) {
      case "super_chat":
      case "super_sticker": {
        const label =
          formatAmount(comment.amount, comment.currency) ||
          (comment.kind === "super_chat" ? "Super Chat" : "Super Sticker");
        return { cls: comment.kind, tier: tierOf(comment.amount, comment.currency), label };
      }
      case "jewels":
        return { cls: "jewels", tier: "jewels", label: jewelsLabel(comment) };
      case "membership":
        return { cls: "membership", tier: "member", label: "メンバー" };
      case "gift": {
        const n = comment.amount;
        const label = typeof n === "number" && n > 1 ? `ギフト ×${n}` : "ギフト";
        return { cls: "gift", tier: "member", label };
      }
      default:
        return null;
    }
  }

  // ---------------------------------------------------------------- DOM helpers

  /** Make an element with a class; `text` goes in as text, never markup. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== "") node.textContent = text;
    return node;
  }

  /** Fill an author element: name as text, roles as classes (styled in CSS). */
  function fillAuthor(node, author) {
    node.textContent = author ? author.name : "";
    for (const role of ["owner", "moderator", "member", "verified"]) {
      node.classList.toggle(`is-${role}`, Boolean(author && author[role]));
    }
  }

  /** Fill a badge element, or hide it when the comment has none. Returns the badge info. */
  function fillBadge(node, comment) {
    const badge = badgeOf(comment);
    node.textContent = badge ? badge.label : "";
    node.hidden = !badge;
    if (badge) {
      node.dataset.tier = badge.tier;
      node.dataset.kind = badge.cls;
    } else {
      delete node.dataset.tier;
      delete node.dataset.kind;
    }
    return badge;
  }

  /**
   * Show `node` and fade it out after `seconds` without poke() (0 = never).
   * Sets class is-hidden and data-visible="true"/"false" on the node.
   */
  function autoHide(node, seconds) {
    let timer = null;
    const set = (visible) => {
      node.classList.toggle("is-hidden", !visible);
      node.dataset.visible = visible ? "true" : "false";
    };
    const clear = () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    set(false);
    return {
      poke() {
        set(true);
        clear();
        if (seconds > 0) timer = setTimeout(() => set(false), seconds * 1000);
      },
      hide() {
        clear();
        set(false);
      },
    };
  }

  global.AituberOverlay = {
    params,
    applyLayout,
    resolveWsUrl,
    backoffMs,
    connect,
    start,
    tracker,
    speaker,
    parseAudioFrame,
    normalizeComment,
    tierOf,
    formatAmount,
    badgeOf,
    el,
    fillAuthor,
    fillBadge,
    autoHide,
  };
})(window);
