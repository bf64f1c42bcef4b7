// The hosted pages' passkey script, served after @simplewebauthn/browser's bundle from OrthID's
// own origin (the pages' CSP allows no inline script). It only ever fills and submits a form the
// server rendered: the server checks the response and answers with a page, as for a password.
(() => {
  const lib = window.SimpleWebAuthnBrowser;
  if (!lib?.browserSupportsWebAuthn()) return;
  // What the page offers only where passkeys work (the sign-up page's "with a passkey" link).
  for (const offer of document.querySelectorAll('[data-webauthn-only]')) offer.hidden = false;
  const form = document.getElementById('passkey-form');
  if (!form) return;
  const button = document.getElementById('passkey-button');
  const status = document.getElementById('passkey-status');

  // The words come from the page, in its language (data-msg-* on the form); English otherwise.
  const messages = {
    cancelled: 'The passkey request was cancelled or timed out. Try again.',
    registered: 'This authenticator holds a passkey for this account already. Use another one.',
    unsupported: 'Your browser could not use a passkey here. Try again, or use another way.',
  };

  function say(kind) {
    const attribute = `msg${kind[0].toUpperCase()}${kind.slice(1)}`;
    status.textContent = form.dataset[attribute] || messages[kind];
    status.hidden = false;
  }

  async function options() {
    // An invitation's step is bound to its link, not to a sign-in: the form names it.
    const token = form.elements.token ? { token: form.elements.token.value } : {};
    const res = await fetch(form.dataset.options, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csrf: form.elements.csrf.value, ...token }),
    });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).detail || 'options');
    return res.json();
  }

  function submit(response) {
    form.elements.response.value = JSON.stringify(response);
    form.submit();
  }

  async function signIn(autofill) {
    const optionsJSON = await options();
    submit(await lib.startAuthentication({ optionsJSON, useBrowserAutofill: autofill }));
  }

  async function register() {
    const optionsJSON = await options();
    submit(await lib.startRegistration({ optionsJSON }));
  }

  function failed(error) {
    // The person closed the browser's dialog, or a newer request replaced this one.
    if (error && (error.name === 'AbortError' || error.code === 'ERROR_CEREMONY_ABORTED')) return;
    if (error && error.name === 'NotAllowedError') {
      say('cancelled');
      return;
    }
    if (
      error &&
      (error.name === 'InvalidStateError' || error.code === 'ERROR_AUTHENTICATOR_PREVIOUSLY_REGISTERED')
    ) {
      say('registered');
      return;
    }
    say('unsupported');
  }

  button.hidden = false;
  if (form.dataset.mode === 'register') {
    button.addEventListener('click', () => register().catch(failed));
    return;
  }
  button.addEventListener('click', () => signIn(false).catch(failed));
  if (form.dataset.autofill !== 'on') return;
  lib
    .browserSupportsWebAuthnAutofill()
    .then((supported) => (supported ? signIn(true) : undefined))
    .catch(failed);
})();
