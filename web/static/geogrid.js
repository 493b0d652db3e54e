// geogrid's page helpers: writes from scripts carry the session's CSRF token.
"use strict";

/** fetch() for same-origin writes: adds the X-CSRFToken header from <meta name="csrf-token">. */
function geogridFetch(url, options) {
  const settings = Object.assign({ credentials: "same-origin" }, options || {});
  const headers = new Headers(settings.headers || {});
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && !headers.has("X-CSRFToken")) {
    headers.set("X-CSRFToken", meta.content);
  }
  if (!headers.has("Accept")) {
    headers.set("Accept", "application/json");
  }
  settings.headers = headers;
  return fetch(url, settings);
}
