// Trustgate review console: the copy buttons, and nothing else. Every page works without this
// file; with it, a button next to a fingerprint or the activation block copies the text.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) {
      return;
    }
    var label = button.textContent;
    var done = function (text, state) {
      button.textContent = text;
      button.setAttribute("data-state", state);
      window.setTimeout(function () {
        button.textContent = label;
        button.removeAttribute("data-state");
      }, 2000);
    };
    // Fallback: select the text so that the keyboard's copy works.
    var select = function () {
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done("Selected: press Ctrl+C", "selected");
    };
    button.setAttribute("aria-label", "Copy " + (target.id === "activation" ? "the activation block" : "the fingerprint"));
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = target.textContent.trim() + (target.id === "activation" ? "\n" : "");
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { done("Copied", "done"); }, select);
      } else {
        select();
      }
    });
  });
});
