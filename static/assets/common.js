// Shared by the pages of orderstream: money, statuses in plain words, small DOM functions.
"use strict";

(function () {
  const CURRENCY = "€";

  // Words for each status: a short label for progress lines and boards, and a sentence
  // for the customer, which may depend on how the order reaches them.
  const STATUS = {
    placed: { label: "Placed", sentence: () => "We've got your order" },
    preparing: { label: "Preparing", sentence: () => "We're preparing your order" },
    baking: { label: "In the oven", sentence: () => "In the oven" },
    ready: {
      label: "Ready",
      sentence: (f) => (f === "pickup" ? "Ready for pickup" : "Ready — waiting for the driver"),
    },
    out_for_delivery: { label: "On its way", sentence: () => "On its way" },
    delivered: {
      label: "Delivered",
      sentence: (f) => (f === "pickup" ? "Picked up. Enjoy!" : "Delivered. Enjoy!"),
    },
    cancelled: { label: "Cancelled", sentence: () => "Cancelled" },
  };

  function money(cents) {
    const n = Number(cents) || 0;
    const sign = n < 0 ? "-" : "";
    const abs = Math.abs(n);
    const whole = Math.floor(abs / 100);
    const frac = String(abs % 100).padStart(2, "0");
    return sign + CURRENCY + whole + "." + frac;
  }

  function statusLabel(status) {
    return STATUS[status] ? STATUS[status].label : status;
  }

  function statusSentence(status, fulfillment) {
    return STATUS[status] ? STATUS[status].sentence(fulfillment) : status;
  }

  function isTerminal(status) {
    return status === "delivered" || status === "cancelled";
  }

  // The stages an order passes through when all goes well.
  function stagesFor(fulfillment) {
    if (fulfillment === "pickup") {
      return ["placed", "preparing", "baking", "ready", "delivered"];
    }
    return ["placed", "preparing", "baking", "ready", "out_for_delivery", "delivered"];
  }

  function shortID(id) {
    return String(id || "").slice(0, 8);
  }

  function clock(iso) {
    const d = new Date(iso);
    if (isNaN(d)) {
      return "";
    }
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function capitalize(s) {
    return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
  }

  // el builds an element with a class and text, the safe way (textContent, never HTML).
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  // readError turns an error response into {code, message, field, allowed, current_version}.
  async function readError(res) {
    try {
      const body = await res.json();
      if (body && body.error) {
        return body.error;
      }
    } catch (e) {
      // Not JSON: fall through to a generic message.
    }
    return { code: "http_" + res.status, message: "Something went wrong (" + res.status + ")." };
  }

  window.orderstream = {
    money,
    statusLabel,
    statusSentence,
    isTerminal,
    stagesFor,
    shortID,
    clock,
    capitalize,
    el,
    readError,
  };
})();
