// Printing (see _static/print.css).
// - Folds print open. Browsers with ::details-content (Chromium 131+, Safari 18.4+) need no script; in the others the
//   closed folds are opened just before printing and closed again after it.
// - A page read in dark mode prints in the light one: paper is white, and the dark theme's light text would be
//   nearly invisible on it (browsers do not print the dark background).
(function () {
  var opened = [], theme = null;
  window.addEventListener("beforeprint", function () {
    opened = Array.prototype.filter.call(document.querySelectorAll("details.hide:not([open])"), function (d) {
      d.open = true;
      return true;
    });
    var html = document.documentElement;
    if (html.dataset.theme === "dark") { theme = "dark"; html.dataset.theme = "light"; }
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
    if (theme) { document.documentElement.dataset.theme = theme; theme = null; }
  });
})();
