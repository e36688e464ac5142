// The Needs-you page, live: the server sends rendered cards (and audit rows) for the
// approval requests that changed; a card whose request closed is removed.
(function () {
  "use strict";

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // A card rendered for the websocket has no request, so no CSRF token: give its forms the
  // page's own (the logout form always carries one).
  function withCsrf(node) {
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!token) return node;
    node.querySelectorAll("form").forEach(function (form) {
      if (form.querySelector("input[name=csrfmiddlewaretoken]")) return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "csrfmiddlewaretoken";
      input.value = token.value;
      form.appendChild(input);
    });
    return node;
  }

  function formatted(node) {
    if (window.voightFormatTimes) window.voightFormatTimes(node);
    return node;
  }

  function refreshCount() {
    var cards = document.getElementById("approval-cards");
    var count = cards.children.length;
    document.getElementById("approval-count").textContent = count;
    document.getElementById("approval-empty").hidden = count > 0;
  }

  function apply(message) {
    var cards = document.getElementById("approval-cards");
    (message.cards || []).forEach(function (item) {
      var current = document.getElementById("approval-" + item.id);
      if (item.html) {
        var node = formatted(withCsrf(fragment(item.html)));
        if (current) current.replaceWith(node); else cards.appendChild(node);
      } else if (current) {
        current.remove();
      }
    });
    var audit = document.getElementById("approval-audit");
    (message.audit || []).forEach(function (item) {
      var empty = audit.querySelector(".audit-empty");
      if (empty) empty.remove();
      var current = document.getElementById("audit-" + item.id);
      var node = formatted(
        fragment("<table><tbody>" + item.html + "</tbody></table>").querySelector("tr"));
      if (current) current.replaceWith(node); else audit.insertBefore(node, audit.firstChild);
    });
    refreshCount();
  }

  function start() {
    var status = document.getElementById("approvals-status");
    var delay = 1000;
    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + "/ws/approvals/");
      socket.onopen = function () {
        delay = 1000;
        status.setAttribute("data-state", "live");
        status.textContent = "live";
      };
      socket.onmessage = function (event) {
        try { apply(JSON.parse(event.data)); } catch (e) { /* a malformed message: skip it */ }
      };
      socket.onclose = function () {
        status.setAttribute("data-state", "offline");
        status.textContent = "offline";
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    if (window.WebSocket) connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
