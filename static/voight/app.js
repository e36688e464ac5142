/* Voight — the little JS the pages need: local times, prompt masking, live updates.
   Nothing is persisted: a reload always starts with every prompt masked. */
(function () {
  "use strict";

  // ------------------------------------------------------------------ time zone + times
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.split("; ").indexOf("tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* old browser: the server cuts days in UTC */ }

  var formats = {
    datetime: new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
    time: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }),
    date: new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", year: "numeric" }),
    short: new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
    full: new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" })
  };

  function relative(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 5) return "just now";
    if (seconds < 60) return seconds + "s ago";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + "m ago";
    var hours = Math.round(minutes / 60);
    if (hours < 48) return hours + "h ago";
    return Math.round(hours / 24) + "d ago";
  }

  function formatTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      var kind = el.getAttribute("data-format") || "datetime";
      el.textContent = kind === "relative" ? relative(date) : (formats[kind] || formats.datetime).format(date);
      el.title = formats.full.format(date);
    }
  }

  // Pages with their own live script (approvals.js) format the nodes they insert.
  window.voightFormatTimes = formatTimes;

  // ------------------------------------------------------------------ masking
  var globalReveal = false;

  function setRevealed(scope, on) {
    scope.classList.toggle("revealed", on);
    var eyes = scope.querySelectorAll("[data-eye]");
    for (var i = 0; i < eyes.length; i++) {
      if (eyes[i].closest(".mask-scope") !== scope) continue;
      eyes[i].setAttribute("aria-pressed", on ? "true" : "false");
      eyes[i].setAttribute("aria-label", on ? "Hide prompt" : "Reveal prompt");
      eyes[i].title = on ? "Hide prompt" : "Reveal prompt";
      if (eyes[i].classList.contains("eye-labelled")) eyes[i].textContent = on ? "Hide" : "Reveal";
    }
  }

  function setGlobal(on) {
    globalReveal = on;
    var scopes = document.querySelectorAll(".mask-scope");
    for (var i = 0; i < scopes.length; i++) setRevealed(scopes[i], on);
    var buttons = document.querySelectorAll("[data-mask-all]");
    for (var j = 0; j < buttons.length; j++) {
      buttons[j].textContent = on ? "Hide all prompts" : "Show all prompts";
      buttons[j].setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  document.addEventListener("click", function (event) {
    var eye = event.target.closest("[data-eye]");
    if (eye) {
      // Inside a <summary> the click must not also open the raw JSON.
      event.preventDefault();
      event.stopPropagation();
      var scope = eye.closest(".mask-scope");
      if (scope) setRevealed(scope, !scope.classList.contains("revealed"));
      return;
    }
    if (event.target.closest("[data-mask-all]")) {
      setGlobal(!globalReveal);
      return;
    }
    var expand = event.target.closest("[data-expand-all]");
    if (expand) {
      var card = expand.closest(".card") || document;
      var all = card.querySelectorAll(".events details");
      var open = expand.getAttribute("data-open") !== "true";
      for (var i = 0; i < all.length; i++) all[i].open = open;
      expand.setAttribute("data-open", open ? "true" : "false");
      expand.textContent = open ? "Collapse all" : "Expand all";
      return;
    }
    var tab = event.target.closest("[data-tabs] [data-tab]");
    if (tab && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      // The tab links work without JS (the server opens the tab they name); here they
      // switch in place and keep the URL shareable.
      event.preventDefault();
      showTab(tab.closest("[data-tabs]"), tab.getAttribute("data-tab"));
      history.replaceState(null, "", tab.getAttribute("href"));
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (source) copyText(source, copy);
    }
  });

  function showTab(box, key) {
    var tabs = box.querySelectorAll("[data-tab]");
    for (var i = 0; i < tabs.length; i++) {
      var on = tabs[i].getAttribute("data-tab") === key;
      tabs[i].classList.toggle("is-active", on);
      tabs[i].setAttribute("aria-selected", on ? "true" : "false");
      var panel = document.getElementById(tabs[i].getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    }
    var field = box.querySelector("[data-tab-field]");
    if (field) field.value = key;
  }

  function copyText(source, button) {
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    // The Clipboard API exists only on secure pages (https, localhost): elsewhere the text is
    // selected and copied the old way.
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(done);
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    try {
      if (document.execCommand("copy")) done();
    } catch (err) { /* the text stays selected for Ctrl+C */ }
  }

  // Raw JSON arrives compact (cheap to render); indent it the first time a row opens.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.open || !details.querySelectorAll) return;
    var blocks = details.querySelectorAll("pre.json:not([data-pretty])");
    for (var i = 0; i < blocks.length; i++) {
      try { blocks[i].textContent = JSON.stringify(JSON.parse(blocks[i].textContent), null, 2); } catch (e) { /* leave it */ }
      blocks[i].setAttribute("data-pretty", "1");
    }
  }, true);

  // Radio filters (time window) apply at once, except "custom" which needs its dates.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.type === "radio" && input.name === "since" && input.value !== "custom" && input.form) {
      input.form.requestSubmit ? input.form.requestSubmit() : input.form.submit();
    }
  });

  // ------------------------------------------------------------------ live updates
  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function adopt(el) {
    formatTimes(el);
    if (el.classList.contains("mask-scope")) setRevealed(el, globalReveal);
    var inner = el.querySelectorAll(".mask-scope");
    for (var i = 0; i < inner.length; i++) setRevealed(inner[i], globalReveal);
    return el;
  }

  function replace(old, el) {
    // Keep what the viewer opened or revealed on the element being refreshed.
    var wasOpen = old.querySelector("details") && old.querySelector("details").open;
    var wasRevealed = old.classList.contains("revealed");
    old.replaceWith(el);
    adopt(el);
    if (wasRevealed) setRevealed(el, true);
    if (wasOpen && el.querySelector("details")) el.querySelector("details").open = true;
  }

  function flash(el) {
    el.classList.add("live-new");
    setTimeout(function () { el.classList.remove("live-new"); }, 1700);
  }

  function insertByTime(list, el) {
    var ts = Date.parse(el.getAttribute("data-ts"));
    var children = list.children;
    for (var i = 0; i < children.length; i++) {
      var other = Date.parse(children[i].getAttribute("data-ts"));
      if (!isNaN(other) && other > ts) { list.insertBefore(el, children[i]); return; }
    }
    list.appendChild(el);
  }

  function dropEmpty(container) {
    var empty = container.querySelectorAll(".empty-row, :scope > .empty");
    for (var i = 0; i < empty.length; i++) empty[i].remove();
  }

  function upsertTop(container, prefix, items, allowInsert) {
    if (!container) return;
    (items || []).forEach(function (item) {
      var old = document.getElementById(prefix + item.id);
      if (item.html === null) { if (old) old.remove(); return; }
      var el = fragment(item.html);
      if (old) { replace(old, el); return; }
      if (!allowInsert) return;
      dropEmpty(container);
      container.insertBefore(adopt(el), container.firstElementChild);
      flash(el);
    });
  }

  function upsertTimed(list, items) {
    if (!list) return;
    (items || []).forEach(function (item) {
      var el = fragment(item.html);
      var old = document.getElementById(el.id);
      if (old) { replace(old, el); return; }
      dropEmpty(list);
      insertByTime(list, adopt(el));
      flash(el);
    });
  }

  function swap(id, html) {
    var old = document.getElementById(id);
    if (old && html) replace(old, fragment(html));
  }

  function showOverflow() {
    if (document.getElementById("live-overflow")) return;
    var note = document.createElement("div");
    note.id = "live-overflow";
    note.className = "notice";
    note.innerHTML = "Many updates arrived. <a href=\"\">Reload</a> to see all of them.";
    var main = document.querySelector(".main .topbar");
    if (main) main.insertAdjacentElement("afterend", note);
  }

  // The first page's "1–N of M" after live rows came in on top: N the rows now shown, M the
  // fresh Total Sessions of the KPI strip.
  function recount() {
    var summary = document.getElementById("sessions-summary");
    var total = document.querySelector('#kpis [data-kpi="total"]');
    if (!summary || !total) return;
    var rows = document.querySelectorAll("#session-rows tr.session-row").length;
    summary.textContent = "1–" + rows + " of " + total.textContent.trim() + " sessions";
  }

  function handle(config, message) {
    if (message.overflow) showOverflow();
    if (config.page === "sessions") {
      swap("kpis", message.kpis);
      upsertTop(document.getElementById("session-rows"), "session-", message.rows, config.first_page);
      if (message.kpis && config.first_page) recount();
      var lane = document.getElementById("needs-you-cards");
      upsertTop(lane, "needs-", message.needs_you, true);
      if (lane) lane.parentElement.classList.toggle("is-empty", !lane.children.length);
    } else if (config.page === "session") {
      swap("session-header", message.header);
      swap("session-summary", message.summary);
      swap("session-subagents", message.subagents);
      upsertTimed(document.getElementById("event-list"), message.events);
    } else if (config.page === "traces") {
      upsertTop(document.getElementById("trace-cards"), "trace-", message.cards, config.first_page);
    } else if (config.page === "trace") {
      swap("trace-header", message.header);
      upsertTimed(document.getElementById("trace-items"), message.items);
    }
  }

  function startLive() {
    var node = document.getElementById("live-config");
    if (!node || !window.WebSocket) return;
    var config = JSON.parse(node.textContent);
    var status = document.getElementById("live-status");
    var delay = 1000;

    function setStatus(state, text) {
      if (!status) return;
      status.setAttribute("data-state", state);
      status.textContent = text;
    }

    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + "/ws/live/");
      socket.onopen = function () {
        delay = 1000;
        setStatus("live", "live");
        socket.send(JSON.stringify({
          action: "subscribe", page: config.page, query: config.query || "",
          id: config.id || null, after: config.after === undefined ? null : config.after
        }));
      };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message.after !== undefined && message.after !== null) config.after = message.after;
        handle(config, message);
      };
      socket.onclose = function () {
        setStatus("offline", "offline");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  }

  function init() {
    formatTimes(document);
    setInterval(function () {
      var nodes = document.querySelectorAll('time[data-format="relative"]');
      for (var i = 0; i < nodes.length; i++) {
        var date = new Date(nodes[i].getAttribute("datetime"));
        if (!isNaN(date.getTime())) nodes[i].textContent = relative(date);
      }
    }, 15000);
    startLive();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
