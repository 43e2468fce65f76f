// The live staff board. The page works without this script (each card is a form that
// posts and comes back to the board); with it, the board follows the staff feed, moves
// cards as orders change, and posts the forms in place. Cards always come from the
// server (GET /staff/orders/{id}/card), so the statuses a card offers are the server's.
"use strict";

(function () {
  const os = window.orderstream;
  const FINISHED_KEPT = 8;

  const page = document.getElementById("board-page");
  const board = document.getElementById("board");
  const messages = document.getElementById("board-messages");
  const announcer = document.getElementById("board-announcer");
  const stateText = document.getElementById("board-state-text");

  let source = null;

  // statusName is a status as it reads in a sentence, as the server writes it.
  function statusName(status) {
    return String(status).replace(/_/g, " ");
  }

  let snapshotIDs = null;
  // The newest version requested per order, so that late answers do not win.
  const wanted = new Map();

  function card(id) {
    return document.getElementById("order-" + id);
  }

  function cardVersion(node) {
    return node ? Number(node.dataset.version) : 0;
  }

  function column(status) {
    return board.querySelector('[data-column="' + status + '"] .column-cards');
  }

  function updateCounts() {
    board.querySelectorAll(".column").forEach((col) => {
      const n = col.querySelectorAll(".order-card").length;
      const count = col.querySelector(".column-count");
      count.textContent = String(n);
      count.setAttribute("aria-label", n + (n === 1 ? " order" : " orders"));
      col.querySelector(".column-empty").hidden = n > 0;
    });
  }

  function setState(name, text) {
    page.dataset.state = name;
    stateText.textContent = text;
  }

  function showMessage(text, isError) {
    const p = os.el("p", "banner " + (isError ? "banner-error" : "banner-ok"), text);
    p.setAttribute("role", isError ? "alert" : "status");
    messages.replaceChildren(p);
  }

  // localTimes shows the times of a card in the browser's time zone, with the age of an
  // open order.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((t) => {
      const at = new Date(t.dateTime);
      if (isNaN(at)) {
        return;
      }
      let text = os.clock(t.dateTime);
      const li = t.closest(".order-card");
      if (t.classList.contains("order-card-time") && li && !os.isTerminal(li.dataset.status)) {
        const minutes = Math.max(0, Math.floor((Date.now() - at.getTime()) / 60000));
        text += minutes < 1 ? " · just now" : " · " + minutes + " min ago";
      }
      t.textContent = text;
    });
  }

  // place puts a card from the server where its status says, replacing the old one
  // unless that one is newer.
  function place(html, note) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const node = tpl.content.firstElementChild;
    if (!node || !node.classList.contains("order-card")) {
      return null;
    }
    const id = node.dataset.order;
    const old = card(id);
    if (old && cardVersion(old) > cardVersion(node)) {
      return null;
    }
    const target = column(node.dataset.status);
    if (!target) {
      return null;
    }

    const hadFocus = old && old.contains(document.activeElement);
    const moved = !old || old.dataset.status !== node.dataset.status;
    if (old) {
      old.remove();
    }
    if (os.isTerminal(node.dataset.status)) {
      target.prepend(node);
      while (target.children.length > FINISHED_KEPT) {
        target.lastElementChild.remove();
      }
    } else {
      insertByAge(target, node);
    }
    if (note) {
      const input = node.querySelector('input[name="note"]');
      if (input) {
        input.value = note;
      }
    }
    wire(node);
    localTimes(node);
    if (moved) {
      node.classList.add("is-flash");
    }
    if (hadFocus) {
      node.focus();
    }
    updateCounts();
    return node;
  }

  // insertByAge keeps open orders oldest first, as the server renders them.
  function insertByAge(list, node) {
    const created = node.querySelector(".order-card-time").dateTime;
    for (const other of list.children) {
      const t = other.querySelector(".order-card-time");
      if (t && t.dateTime > created) {
        list.insertBefore(node, other);
        return;
      }
    }
    list.append(node);
  }

  // refresh fetches an order's card unless the board already shows that version.
  async function refresh(id, version) {
    if (version && cardVersion(card(id)) >= version) {
      return card(id);
    }
    if (version) {
      if ((wanted.get(id) || 0) >= version) {
        return card(id);
      }
      wanted.set(id, version);
    }
    let res;
    try {
      res = await fetch("/staff/orders/" + encodeURIComponent(id) + "/card", {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
      });
    } catch (e) {
      return null;
    }
    if (res.status === 404) {
      const old = card(id);
      if (old) {
        old.remove();
        updateCounts();
      }
      return null;
    }
    if (!res.ok) {
      return null;
    }
    return place(await res.text());
  }

  function openFeed() {
    source = new EventSource("/staff/events");
    source.onopen = () => {
      snapshotIDs = new Set();
      setState("live", "Live: new orders and changes appear by themselves.");
    };
    source.addEventListener("snapshot", (e) => {
      const o = JSON.parse(e.data);
      if (snapshotIDs) {
        snapshotIDs.add(o.id);
      }
      refresh(o.id, o.version);
    });
    source.addEventListener("ready", () => {
      // Cards of open orders missing from a fresh snapshot finished while the feed was
      // down: ask for them again, and they land in their final column.
      board.querySelectorAll(".order-card").forEach((node) => {
        const id = node.dataset.order;
        if (!os.isTerminal(node.dataset.status) && snapshotIDs && !snapshotIDs.has(id)) {
          refresh(id, 0);
        }
      });
      snapshotIDs = null;
    });
    source.addEventListener("status", (e) => {
      const ev = JSON.parse(e.data);
      const shown = card(ev.order_id);
      if (cardVersion(shown) >= ev.version) {
        return;
      }
      refresh(ev.order_id, ev.version).then((node) => {
        if (node && !shown && ev.status === "placed") {
          announcer.textContent = "New order #" + os.shortID(ev.order_id) + ".";
        }
      });
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the feed (a restart, or too many streams): try again.
        setState("reconnecting", "Reconnecting…");
        window.setTimeout(openFeed, 3000);
        return;
      }
      setState("reconnecting", "Reconnecting…");
    };
  }

  // submit posts a card's form in place and puts the card the server answers with
  // where it belongs.
  async function submit(form, button) {
    const node = form.closest(".order-card");
    const id = node.dataset.order;
    const data = new URLSearchParams(new FormData(form));
    data.set("status", button.value);
    const note = data.get("note") || "";

    node.classList.add("is-busy");
    form.querySelectorAll("button").forEach((b) => {
      b.disabled = true;
    });
    let res;
    try {
      res = await fetch(form.action, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: data,
        credentials: "same-origin",
      });
    } catch (e) {
      node.classList.remove("is-busy");
      form.querySelectorAll("button").forEach((b) => {
        b.disabled = false;
      });
      cardMessage(node, "The kitchen server did not answer. Try again.", true);
      return;
    }

    if (res.ok) {
      const o = await res.json();
      const fresh = (await refresh(id, o.version)) || card(id);
      const text = "Order #" + os.shortID(id) + " moved to " + statusName(o.status) + ".";
      if (fresh) {
        fresh.focus();
      }
      showMessage(text, false);
      return;
    }

    const err = await os.readError(res);
    let text = err.message;
    const keepNote = err.code === "invalid_field" || err.code === "stale_version" ? note : "";
    const fresh = (await refresh(id, 0)) || node;
    if (err.code === "stale_version") {
      const now = fresh.dataset.status;
      text = "Order #" + os.shortID(id) + " was already moved to " + statusName(now) +
        " by someone else; the card shows its current state.";
    } else if (err.code === "illegal_transition") {
      text = "Order #" + os.shortID(id) + " can no longer be moved that way: it is " +
        statusName(fresh.dataset.status) + " now.";
    } else if (err.code === "invalid_field" && err.field === "note") {
      text = "The note is too long or holds characters it may not: it was not saved.";
    }
    const input = fresh.querySelector('input[name="note"]');
    if (input && keepNote) {
      input.value = keepNote;
    }
    fresh.classList.remove("is-busy");
    fresh.querySelectorAll("button").forEach((b) => {
      b.disabled = false;
    });
    cardMessage(fresh, text, true);
    showMessage(text, true);
    fresh.focus();
  }

  function cardMessage(node, text, isError) {
    let p = node.querySelector(".card-message");
    if (!p) {
      p = os.el("p", "card-message");
      node.append(p);
    }
    p.className = "card-message " + (isError ? "card-message-error" : "card-message-ok");
    p.textContent = text;
  }

  function wire(root) {
    root.querySelectorAll("form.order-card-form").forEach((form) => {
      if (form.dataset.wired) {
        return;
      }
      form.dataset.wired = "1";
      form.addEventListener("submit", (e) => {
        const button = e.submitter;
        if (!button || !button.value) {
          return;
        }
        e.preventDefault();
        submit(form, button);
      });
    });
  }

  wire(board);
  localTimes(board);
  window.setInterval(() => localTimes(board), 30000);
  if (window.EventSource) {
    setState("connecting", "Connecting…");
    openFeed();
  }
})();
