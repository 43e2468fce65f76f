// The live tracking page of one order. It listens to the order's event stream with
// EventSource, keeps the events it has shown in sessionStorage so that a reload resumes
// with ?last_event_id= instead of starting over, and ignores any event whose version it
// has already shown.
"use strict";

(function () {
  const os = window.orderstream;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const MAX_RETRY_MS = 30000;

  // More about each status, for the customer.
  const DETAIL = {
    placed: () => "The kitchen will start on it in a moment.",
    preparing: () => "Fresh dough, our tomato sauce and your toppings.",
    baking: () => "A few minutes in the wood-fired oven.",
    ready: (o) => (o.fulfillment === "pickup"
      ? "Come and get it while it's hot: give us your order number at the counter."
      : "Boxed and keeping warm until the driver takes it."),
    out_for_delivery: (o) => "Your driver is on the way to " + (o.address || "you") + ".",
    delivered: () => "Thank you for ordering with us.",
    cancelled: () => "Your order was cancelled. If you did not expect this, please call us.",
  };

  const main = document.getElementById("track");
  const match = /^\/orders\/([^/]+)\/?$/.exec(window.location.pathname);
  const orderID = match ? decodeURIComponent(match[1]) : "";
  const storageKey = "orderstream.events." + orderID;

  const state = {
    order: null,
    menu: null,
    events: [],
    highest: 0,
    source: null,
    finished: false,
    retryMs: 1000,
    retryTimer: 0,
    announceTimer: 0,
  };

  function setState(name) {
    main.dataset.state = name;
  }

  function loadStored() {
    try {
      const stored = JSON.parse(window.sessionStorage.getItem(storageKey) || "[]");
      if (Array.isArray(stored)) {
        stored.filter((e) => e && e.order_id === orderID).forEach((e) => record(e));
      }
    } catch (e) {
      // Unreadable or unavailable storage: start from the beginning.
    }
  }

  function save() {
    try {
      window.sessionStorage.setItem(storageKey, JSON.stringify(state.events));
    } catch (e) {
      // Storage full or disabled: a reload then replays the whole stream, still without
      // duplicates.
    }
  }

  // record keeps an event unless its version was already shown. It reports whether the
  // event was new.
  function record(ev) {
    if (typeof ev.version !== "number" || ev.version <= state.highest) {
      return false;
    }
    state.events.push(ev);
    state.highest = ev.version;
    return true;
  }

  function latest() {
    return state.events.length ? state.events[state.events.length - 1] : null;
  }

  function currentStatus() {
    const ev = latest();
    if (state.order && (!ev || state.order.version > ev.version)) {
      return state.order.status;
    }
    return ev ? ev.status : "";
  }

  function openStream() {
    if (state.finished) {
      return;
    }
    let url = "/api/orders/" + encodeURIComponent(orderID) + "/events";
    if (state.highest > 0) {
      url += "?last_event_id=" + state.highest;
    }
    const source = new EventSource(url);
    state.source = source;

    source.onopen = () => {
      state.retryMs = 1000;
      showLive();
    };
    source.addEventListener("status", (e) => {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (!record(ev)) {
        return;
      }
      save();
      render();
      announce();
      if (os.isTerminal(ev.status)) {
        finish();
      }
    });
    source.onerror = () => {
      if (state.finished) {
        source.close();
        return;
      }
      if (source.readyState === EventSource.CONNECTING) {
        showReconnecting();
        return;
      }
      // CLOSED: the server answered something other than a stream (204 after the end,
      // 404, 503). Ask for the order to learn which.
      source.close();
      recoverFromClosed();
    };
  }

  async function recoverFromClosed() {
    const order = await fetchOrder();
    if (order === "not_found" || state.finished) {
      return;
    }
    if (order && os.isTerminal(order.status) && state.highest >= order.version) {
      finish();
      return;
    }
    if (order && os.isTerminal(order.status) && state.highest > 0) {
      // The end happened but this page missed it: replay the whole history.
      state.events = [];
      state.highest = 0;
    }
    showReconnecting();
    window.clearTimeout(state.retryTimer);
    state.retryTimer = window.setTimeout(openStream, state.retryMs);
    state.retryMs = Math.min(MAX_RETRY_MS, state.retryMs * 2);
  }

  // fetchOrder loads the order; it answers the order, "not_found", or null when the
  // server could not be asked.
  async function fetchOrder() {
    let res;
    try {
      res = await fetch("/api/orders/" + encodeURIComponent(orderID), {
        headers: { Accept: "application/json" },
      });
    } catch (e) {
      return null;
    }
    if (res.status === 404) {
      showNotFound();
      return "not_found";
    }
    if (!res.ok) {
      return null;
    }
    const order = await res.json();
    if (!state.order || order.version >= state.order.version) {
      state.order = order;
    }
    render();
    return order;
  }

  async function fetchMenu() {
    try {
      const res = await fetch("/api/menu", { headers: { Accept: "application/json" } });
      if (res.ok) {
        state.menu = await res.json();
        renderSummary();
      }
    } catch (e) {
      // Pizza ids stand in for their names.
    }
  }

  function finish() {
    state.finished = true;
    window.clearTimeout(state.retryTimer);
    if (state.source) {
      state.source.close();
    }
    document.getElementById("connection").hidden = true;
    setState("finished");
    document.getElementById("live-text").textContent = "This order is complete: live updates have ended.";
    render();
  }

  function showLive() {
    if (state.finished) {
      return;
    }
    document.getElementById("connection").hidden = true;
    document.getElementById("live-text").textContent = "Live: changes appear here as they happen.";
    setState("live");
  }

  function showReconnecting() {
    if (state.finished) {
      return;
    }
    document.getElementById("connection-text").textContent =
      "Reconnecting… the connection to the kitchen dropped. We'll catch up as soon as it is back.";
    document.getElementById("connection").hidden = false;
    document.getElementById("live-text").textContent = "Reconnecting…";
    setState("reconnecting");
  }

  function showNotFound() {
    state.finished = true;
    if (state.source) {
      state.source.close();
    }
    document.querySelector(".status-card").hidden = true;
    document.getElementById("order-details").hidden = true;
    document.getElementById("connection").hidden = true;
    document.getElementById("not-found").hidden = false;
    document.title = "Order not found · orderstream pizzeria";
    setState("not-found");
  }

  // announce tells screen readers the new status. A burst of events (a replay) is
  // announced once, with the status it ends on.
  function announce() {
    window.clearTimeout(state.announceTimer);
    state.announceTimer = window.setTimeout(() => {
      const status = currentStatus();
      if (!status || !state.order) {
        return;
      }
      document.getElementById("announcer").textContent =
        "Order status: " + os.statusSentence(status, state.order.fulfillment) + ".";
    }, 400);
  }

  function render() {
    if (!state.order) {
      return;
    }
    const o = state.order;
    const status = currentStatus();
    const ev = latest();

    document.getElementById("order-number").textContent = "#" + os.shortID(o.id);
    document.getElementById("status-text").textContent = os.statusSentence(status, o.fulfillment);
    document.getElementById("status-detail").textContent = DETAIL[status] ? DETAIL[status](o) : "";
    document.title = os.statusSentence(status, o.fulfillment) + " · Order #" + os.shortID(o.id);
    main.dataset.status = status;
    if (ev && ev.note && ev.status === status) {
      const note = os.el("span", "kitchen-note");
      note.append(os.el("span", "kitchen-note-label", "Note from the kitchen: "));
      note.append(os.el("q", "", ev.note));
      document.getElementById("status-detail").append(" ", note);
    }

    renderStages(o, status);
    renderHistory(o);
    renderSummary();
    document.getElementById("order-details").hidden = false;
  }

  function renderStages(o, status) {
    const reached = {};
    for (const ev of state.events) {
      reached[ev.status] = ev.at;
    }
    const stages = os.stagesFor(o.fulfillment);
    const current = stages.indexOf(status);
    const list = document.getElementById("stages");
    list.replaceChildren();

    stages.forEach((stage, i) => {
      let cls = "todo";
      if (status === "cancelled") {
        cls = reached[stage] ? "done" : "skipped";
      } else if (i < current || (i === current && os.isTerminal(stage))) {
        cls = "done";
      } else if (i === current) {
        cls = "current";
      }
      const label = stage === "delivered" && o.fulfillment === "pickup" ? "Picked up"
        : os.statusLabel(stage);
      list.append(stageItem(stage, label, reached[stage], cls, i === current));
    });
    if (status === "cancelled") {
      list.append(stageItem("cancelled", "Cancelled", reached.cancelled, "cancelled", true));
    }
  }

  function stageItem(stage, label, at, cls, isCurrent) {
    const li = os.el("li", "stage stage-" + cls);
    li.dataset.stage = stage;
    if (isCurrent) {
      li.setAttribute("aria-current", "step");
    }
    li.append(os.el("span", "stage-dot"));
    li.append(os.el("span", "stage-name", label));
    if (at) {
      const time = os.el("time", "stage-time", os.clock(at));
      time.dateTime = at;
      li.append(time);
    } else {
      const pending = cls === "skipped" ? "skipped" : "not yet";
      li.append(os.el("span", "stage-time stage-time-pending", pending));
    }
    return li;
  }

  function renderHistory(o) {
    const list = document.getElementById("history");
    list.replaceChildren();
    for (const ev of state.events) {
      const li = os.el("li", "history-item history-" + ev.status);
      li.dataset.version = String(ev.version);
      const time = os.el("time", "history-time", os.clock(ev.at));
      time.dateTime = ev.at;
      li.append(time);
      const text = os.el("div", "history-text");
      text.append(os.el("span", "history-status", os.statusSentence(ev.status, o.fulfillment)));
      if (ev.note) {
        text.append(os.el("q", "history-note", ev.note));
      }
      li.append(text);
      list.append(li);
    }
  }

  function pizzaName(id) {
    const p = state.menu && state.menu.pizzas.find((x) => x.id === id);
    return p ? p.name : os.capitalize(String(id).replace(/_/g, " "));
  }

  function renderSummary() {
    const o = state.order;
    if (!o) {
      return;
    }
    const who = o.fulfillment === "delivery"
      ? "Delivery to " + (o.address || "") + " for " + o.customer_name
      : "Pickup for " + o.customer_name;
    document.getElementById("summary-who").textContent = who;

    const items = document.getElementById("summary-items");
    items.replaceChildren();
    let subtotal = 0;
    for (const it of o.items) {
      const li = os.el("li", "summary-item");
      li.append(os.el("span", "", it.quantity + " × " + pizzaName(it.pizza) + ", " + it.size));
      li.append(os.el("span", "summary-price", os.money(it.unit_price_cents * it.quantity)));
      items.append(li);
      subtotal += it.unit_price_cents * it.quantity;
    }
    const fee = o.total_cents - subtotal;
    document.getElementById("summary-fee-row").hidden = o.fulfillment !== "delivery";
    document.getElementById("summary-fee").textContent = os.money(fee);
    document.getElementById("summary-total").textContent = os.money(o.total_cents);
  }

  function start() {
    if (!UUID.test(orderID)) {
      showNotFound();
      return;
    }
    loadStored();
    if (latest() && os.isTerminal(latest().status)) {
      finish();
    } else {
      openStream();
    }
    fetchMenu();
    loadOrder(2000);
  }

  // loadOrder fetches the order, and keeps trying, less and less often, while the
  // server cannot answer.
  async function loadOrder(delay) {
    const order = await fetchOrder();
    if (order === null && !state.order) {
      window.setTimeout(() => loadOrder(Math.min(MAX_RETRY_MS, delay * 2)), delay);
    }
  }

  start();
})();
