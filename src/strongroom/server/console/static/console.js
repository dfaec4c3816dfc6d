// strongroom console: the only script, served by strongroom itself (CSP script-src 'self').
// Every page works without it; it only asks before a destructive button's form is sent.
"use strict";
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset ? button.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
