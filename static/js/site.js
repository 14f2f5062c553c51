/*
 * What every page (portal and console) does with JavaScript, none of it
 * needed to use the page: the menu button that folds a menu on narrow
 * screens (CSS decides which widths), keyboard access to the boxes that
 * scroll sideways (wide tables, long code), and a question before a
 * destructive action posts.
 */
(function () {
  "use strict";

  // <button data-menu-toggle aria-controls="MENU">: the button's parent
  // gets "menu-collapsible" (the CSS folds MENU only then) and "menu-open".
  document.querySelectorAll("[data-menu-toggle]").forEach(function (button) {
    var menu = document.getElementById(button.getAttribute("aria-controls"));
    var holder = button.parentElement;
    if (!menu || !holder) {
      return;
    }
    function show(open) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
      holder.classList.toggle("menu-open", open);
    }
    holder.classList.add("menu-collapsible");
    button.hidden = false;
    button.addEventListener("click", function () {
      show(button.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && holder.classList.contains("menu-open")) {
        show(false);
        button.focus();
      }
    });
  });

  // <form data-confirm="QUESTION">: a destructive action (revoke, suspend,
  // disable...) asks before it posts; cancelling the question posts
  // nothing. The browser's own dialog: focus, keyboard and screen readers
  // come with it. Without JavaScript the server's own second step stands
  // (a confirmation page, a reason to give). The browser checks the form's
  // fields (a required reason) before it fires "submit".
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // A box that scrolls sideways must be reachable by keyboard to be
  // scrolled without a mouse: it joins the tab order while it overflows.
  var SCROLLERS = ".table-wrap, pre, .console-body table";
  function markScrollers() {
    document.querySelectorAll(SCROLLERS).forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.tabIndex = 0;
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
      }
    });
  }
  var pending = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(pending);
    pending = window.setTimeout(markScrollers, 100);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", markScrollers);
  } else {
    markScrollers();
  }
})();
