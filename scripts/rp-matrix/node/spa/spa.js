// A single-page app on its own origin, calling the IdP cross-origin with
// fetch exactly as a browser app would: register (JSON, so a CORS
// preflight), the password grant (a URLSearchParams body, which the browser
// sends as application/x-www-form-urlencoded;charset=UTF-8), userinfo with
// the bearer token, and a wrong password whose JSON error body must be
// readable through CORS (not "TypeError: Failed to fetch").
//
// Input in the URL fragment: {"idp", "email", "password", "newEmail"}.
// Output: window.rpResults = {step: {status, body} | {error}}.
(async function () {
  'use strict';
  var cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  var idp = cfg.idp;
  var results = {};

  async function call(step, url, init) {
    try {
      var res = await fetch(url, init);
      var text = await res.text();
      var body;
      try { body = JSON.parse(text); } catch (e) { body = text; }
      results[step] = { status: res.status, body: body };
    } catch (e) {
      results[step] = { error: String(e) };
    }
    return results[step];
  }

  await call('register', idp + '/account/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: cfg.newEmail, password: cfg.password, given_name: 'Ada', client_id: 'spa' })
  });

  var login = await call('token', idp + '/oauth/token', {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', client_id: 'spa', username: cfg.email, password: cfg.password })
  });

  if (login.status === 200 && login.body && login.body.access_token) {
    await call('userinfo', idp + '/oauth/userinfo', {
      headers: { authorization: 'Bearer ' + login.body.access_token }
    });
  } else {
    results.userinfo = { error: 'not tried: the password grant gave no access token' };
  }

  await call('wrongPassword', idp + '/oauth/token', {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'password', client_id: 'spa', username: cfg.email, password: cfg.password + '-wrong' })
  });

  document.getElementById('out').textContent = JSON.stringify(results, null, 2);
  window.rpResults = results;
})();
