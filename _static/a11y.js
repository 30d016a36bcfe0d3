// The colour-mode button's name says which mode is on ("Color mode: dark"), as its icon shows it. The theme names
// it "Color mode" whatever the mode (its icons are decoration: _templates/components/theme-switcher.html); the
// theme's own script switches the mode and the icon, by setting data-mode on <html>, which this follows.
(function () {
  var words = {light: "light", dark: "dark", auto: "as the system"};
  function name() {
    var mode = document.documentElement.dataset.mode || "auto";
    document.querySelectorAll(".theme-switch-button").forEach(function (b) {
      b.setAttribute("aria-label", "Color mode: " + (words[mode] || mode));
    });
  }
  function start() {
    name();
    new MutationObserver(name).observe(document.documentElement, {attributes: true, attributeFilter: ["data-mode"]});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
