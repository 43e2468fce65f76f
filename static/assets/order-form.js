// The menu and order form of the home page: builds the menu from /api/menu, keeps the
// basket and its total, places the order and shows the server's errors beside the
// fields they concern.
"use strict";

(function () {
  const os = window.orderstream;
  const MAX_QUANTITY = 20;

  // Friendly names for the fields the server may name in a 422.
  const FIELD_NAMES = {
    customer_name: "Your name",
    phone: "Phone",
    address: "Address",
    fulfillment: "Delivery or pickup",
    items: "Your order",
    pizza: "Pizza",
    size: "Size",
    quantity: "Quantity",
  };

  const state = { menu: null, lines: [], submitting: false };

  const form = document.getElementById("order-form");
  const menuList = document.getElementById("menu-list");
  const menuStatus = document.getElementById("menu-status");
  const linesList = document.getElementById("basket-lines");
  const basketEmpty = document.getElementById("basket-empty");
  const basketStatus = document.getElementById("basket-status");
  const submitButton = document.getElementById("place-order");
  const formError = document.getElementById("form-error");

  function pizza(id) {
    return state.menu.pizzas.find((p) => p.id === id);
  }

  function fulfillment() {
    const checked = form.querySelector('input[name="fulfillment"]:checked');
    return checked ? checked.value : "";
  }

  async function loadMenu() {
    let res;
    try {
      res = await fetch("/api/menu", { headers: { Accept: "application/json" } });
    } catch (e) {
      menuStatus.textContent = "We could not reach the kitchen. Check your connection and reload.";
      return;
    }
    if (!res.ok) {
      const err = await os.readError(res);
      menuStatus.textContent = "The menu is not available right now: " + err.message;
      return;
    }
    state.menu = await res.json();
    renderMenu();
    renderBasket();
  }

  function renderMenu() {
    const tpl = document.getElementById("menu-item-template");
    menuList.replaceChildren();
    for (const p of state.menu.pizzas) {
      const item = tpl.content.firstElementChild.cloneNode(true);
      item.dataset.pizza = p.id;
      item.querySelector(".menu-item-name").textContent = p.name;
      item.querySelector(".menu-item-description").textContent = p.description;

      const sizes = item.querySelector(".menu-item-sizes");
      sizes.setAttribute("aria-label", "Add " + p.name);
      for (const size of state.menu.sizes) {
        const button = os.el("button", "button size-button");
        button.type = "button";
        button.dataset.size = size;
        button.setAttribute(
          "aria-label",
          "Add a " + size + " " + p.name + ", " + os.money(p.prices_cents[size]),
        );
        button.append(os.el("span", "size-name", os.capitalize(size)));
        button.append(os.el("span", "size-price", os.money(p.prices_cents[size])));
        button.addEventListener("click", () => addLine(p.id, size));
        sizes.append(button);
      }
      menuList.append(item);
    }
    menuStatus.hidden = true;
    menuStatus.textContent = "";
  }

  function addLine(pizzaID, size) {
    const same = state.lines.find((l) => l.pizza === pizzaID && l.size === size);
    if (same) {
      same.quantity = Math.min(MAX_QUANTITY, (Number(same.quantity) || 0) + 1);
    } else {
      state.lines.push({ pizza: pizzaID, size, quantity: 1 });
    }
    clearError("items");
    renderBasket();
    announce("Added a " + size + " " + pizza(pizzaID).name + ". Total " + os.money(total()) + ".");
  }

  function subtotal() {
    let cents = 0;
    for (const l of state.lines) {
      const q = Number(l.quantity);
      if (Number.isInteger(q) && q > 0) {
        cents += pizza(l.pizza).prices_cents[l.size] * q;
      }
    }
    return cents;
  }

  function deliveryFee() {
    return fulfillment() === "delivery" && state.menu ? state.menu.delivery_fee_cents : 0;
  }

  function total() {
    return subtotal() + (state.lines.length > 0 ? deliveryFee() : 0);
  }

  function renderBasket() {
    const tpl = document.getElementById("basket-line-template");
    linesList.replaceChildren();
    state.lines.forEach((line, i) => {
      const node = tpl.content.firstElementChild.cloneNode(true);
      const p = pizza(line.pizza);
      node.dataset.index = String(i);
      node.querySelector(".basket-line-name").textContent = p.name;
      node.querySelector(".basket-line-price").textContent = os.money(
        p.prices_cents[line.size] * (Number(line.quantity) || 0),
      );

      const size = node.querySelector(".line-size");
      size.id = "line-" + i + "-size";
      size.setAttribute("aria-label", "Size of " + p.name + " (line " + (i + 1) + ")");
      for (const s of state.menu.sizes) {
        const opt = os.el("option", "", os.capitalize(s));
        opt.value = s;
        opt.selected = s === line.size;
        size.append(opt);
      }
      size.addEventListener("change", () => {
        line.size = size.value;
        renderBasket();
        document.getElementById("line-" + i + "-size").focus();
      });

      const qty = node.querySelector(".line-quantity");
      qty.id = "line-" + i + "-quantity";
      qty.value = String(line.quantity);
      qty.setAttribute("aria-label", "Quantity of " + p.name + " (line " + (i + 1) + ")");
      qty.addEventListener("input", () => {
        line.quantity = qty.value === "" ? "" : Number(qty.value);
        updatePrices();
      });

      const remove = node.querySelector(".line-remove");
      remove.setAttribute("aria-label", "Remove " + p.name + " (line " + (i + 1) + ")");
      remove.addEventListener("click", () => {
        state.lines.splice(i, 1);
        renderBasket();
        announce("Removed " + p.name + ". Total " + os.money(total()) + ".");
        const next = linesList.querySelector(".line-remove") || submitButton;
        next.focus();
      });

      const err = node.querySelector(".line-error");
      err.id = "line-" + i + "-error";
      size.setAttribute("aria-describedby", err.id);
      qty.setAttribute("aria-describedby", err.id);
      linesList.append(node);
    });
    basketEmpty.hidden = state.lines.length > 0;
    updatePrices();
  }

  // updatePrices refreshes line prices and totals without rebuilding the inputs, so
  // typing in a quantity field keeps the caret where it is.
  function updatePrices() {
    linesList.querySelectorAll(".basket-line").forEach((node) => {
      const line = state.lines[Number(node.dataset.index)];
      const p = pizza(line.pizza);
      node.querySelector(".basket-line-price").textContent = os.money(
        p.prices_cents[line.size] * (Number(line.quantity) || 0),
      );
    });
    const fee = state.lines.length > 0 ? deliveryFee() : 0;
    document.getElementById("subtotal").textContent = os.money(subtotal());
    document.getElementById("delivery-fee").textContent = os.money(fee);
    document.getElementById("delivery-fee-row").hidden = fulfillment() !== "delivery";
    document.getElementById("total").textContent = os.money(total());

    const count = state.lines.reduce((n, l) => n + (Number(l.quantity) || 0), 0);
    document.getElementById("basket-bar").hidden = state.lines.length === 0;
    document.getElementById("basket-bar-count").textContent =
      count + (count === 1 ? " pizza" : " pizzas");
    document.getElementById("basket-bar-total").textContent = os.money(total());
  }

  function announce(text) {
    basketStatus.textContent = text;
  }

  function updateFulfillment() {
    const delivery = fulfillment() === "delivery";
    document.getElementById("address-field").hidden = !delivery;
    document.getElementById("address").required = delivery;
    clearError("address");
    updatePrices();
  }

  // errorTarget finds where the error for a field goes: its message element and the
  // control to mark invalid and focus.
  function errorTarget(field) {
    const m = /^items\[(\d+)\]\.(\w+)$/.exec(field || "");
    if (m) {
      const line = linesList.querySelector('.basket-line[data-index="' + m[1] + '"]');
      if (!line) {
        return null;
      }
      const control = m[2] === "size" ? line.querySelector(".line-size")
        : line.querySelector(".line-quantity");
      return { message: line.querySelector(".line-error"), control, name: m[2] };
    }
    const message = form.querySelector('[data-error-for="' + field + '"]');
    if (!message) {
      return null;
    }
    let control = document.getElementById(field);
    if (field === "fulfillment") {
      control = form.querySelector('input[name="fulfillment"]');
    } else if (field === "items") {
      control = linesList.querySelector(".line-quantity") || menuList.querySelector("button");
    }
    return { message, control, name: field };
  }

  function showError(field, text) {
    const target = errorTarget(field);
    if (!target) {
      formError.textContent = text;
      formError.hidden = false;
      return null;
    }
    target.message.textContent = text;
    target.message.hidden = false;
    if (target.control) {
      target.control.setAttribute("aria-invalid", "true");
    }
    return target.control;
  }

  function clearError(field) {
    const target = errorTarget(field);
    if (target) {
      target.message.hidden = true;
      target.message.textContent = "";
      if (target.control) {
        target.control.removeAttribute("aria-invalid");
      }
    }
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((e) => {
      e.hidden = true;
      e.textContent = "";
    });
    form.querySelectorAll('[aria-invalid="true"]').forEach((e) => e.removeAttribute("aria-invalid"));
    formError.hidden = true;
    formError.textContent = "";
  }

  // fieldMessage phrases a 422's message for the person filling the form.
  function fieldMessage(err) {
    const field = err.field || "";
    let text = err.message || "is not valid";
    if (text.startsWith(field + ":")) {
      text = text.slice(field.length + 1).trim();
    }
    const last = field.replace(/^items\[\d+\]\./, "");
    const name = FIELD_NAMES[last];
    if (name && !text.toLowerCase().startsWith(name.toLowerCase())) {
      text = name + " " + text;
    }
    return text.endsWith(".") ? text : text + ".";
  }

  function body() {
    const delivery = fulfillment() === "delivery";
    return {
      customer_name: form.customer_name.value,
      phone: form.phone.value,
      fulfillment: fulfillment(),
      address: delivery ? form.address.value : null,
      items: state.lines.map((l) => ({
        pizza: l.pizza,
        size: l.size,
        quantity: l.quantity === "" ? 0 : Number(l.quantity),
      })),
    };
  }

  async function submit(event) {
    event.preventDefault();
    if (state.submitting || !state.menu) {
      return;
    }
    clearErrors();
    if (state.lines.length === 0) {
      const control = showError("items", "Add at least one pizza to your order.");
      if (control) {
        control.focus();
      }
      return;
    }

    let leaving = false;
    state.submitting = true;
    submitButton.disabled = true;
    submitButton.textContent = "Placing your order…";
    try {
      const res = await fetch("/api/orders", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body()),
      });
      if (res.status === 201) {
        const order = await res.json();
        leaving = true;
        window.location.assign("/orders/" + encodeURIComponent(order.id));
        return;
      }
      const err = await os.readError(res);
      const control = err.field ? showError(err.field, fieldMessage(err)) : showError("", err.message);
      if (control) {
        control.focus();
      } else {
        formError.focus();
      }
    } catch (e) {
      showError("", "We could not reach the kitchen. Check your connection and try again.");
    } finally {
      if (leaving) {
        return;
      }
      state.submitting = false;
      submitButton.disabled = false;
      submitButton.textContent = "Place order";
    }
  }

  form.addEventListener("submit", submit);
  form.querySelectorAll('input[name="fulfillment"]').forEach((r) => {
    r.addEventListener("change", updateFulfillment);
  });
  ["customer_name", "phone", "address"].forEach((name) => {
    form[name].addEventListener("input", () => clearError(name));
  });
  // The bar that leads to the basket gets out of the way once the basket is in view.
  if (window.IntersectionObserver) {
    new IntersectionObserver((entries) => {
      document.body.classList.toggle("basket-in-view", entries[0].isIntersecting);
    }).observe(form);
  }

  updateFulfillment();
  loadMenu();
})();
