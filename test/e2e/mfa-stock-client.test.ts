// A second factor on a running `orthid start`, set up as an operator would with the `orthid`
// command, used by a stock openid-client relying party through the hosted pages (no JavaScript),
// and administered through the admin API with the bootstrap credentials.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ACR_MFA } from '../../src/identity/mfa-factors.js';
import { TOTP_PERIOD_SECONDS, totpCode, totpStep } from '../../src/identity/totp.js';
import {
  enrolmentSecret,
  pageError,
  recoveryCodesOn,
  startFlow,
  submit,
  tokens,
} from '../helpers/mfa-sign-in.js';
import { freePort } from '../helpers/postgres.js';
import { type RegisteredClient, type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = {
  email: 'tess@acme.test',
  name: 'Tess Totp',
  password: 'two steps are better than one, said tess',
};

describe('a second factor on a running OrthID with a stock relying party', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let client: RegisteredClient;
  let redirectUri: string;

  before(async () => {
    orthid = await startRunningOrthId(USER);
    redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    client = await orthid.createClient([
      '--name',
      'Tess Web',
      '--grant',
      'authorization_code',
      '--redirect-uri',
      redirectUri,
      '--first-party',
    ]);
  });

  after(async () => {
    await orthid?.stop();
  });

  test('orthid tenant configure --mfa refuses what it cannot apply and changes nothing', async () => {
    const bad = await orthid.cli(['tenant', 'configure', 'acme', '--mfa', 'always']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /mfa\.policy_invalid|--mfa must be one of off, optional, required/);
    const nowhere = await orthid.cli([
      'tenant',
      'configure',
      'acme',
      '--mfa',
      'required',
      '--mfa-organisations',
      'Nowhere',
    ]);
    assert.notEqual(nowhere.code, 0);
    assert.match(nowhere.stderr, /No organisation named "Nowhere"/);
    const shown = await orthid.cli(['tenant', 'configure', 'acme', '--json']);
    assert.equal(JSON.parse(shown.stdout).mfa.mode, 'off');
  });

  test('with MFA required, the user enrols at the next sign-in and the relying party gets amr and acr; later sign-ins ask for the code', async () => {
    const set = await orthid.cli(['tenant', 'configure', 'acme', '--mfa', 'required']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /; MFA required;/);

    const start = () => startFlow({ issuer: orthid.issuer, client: client as never, redirectUri });
    const flow = await submit(await start(), { email: USER.email, password: USER.password });
    assert.match(flow.html, /<h1>Set up your authenticator app<\/h1>/);
    const secret = enrolmentSecret(flow.html);
    const enrolledAt = new Date();
    await submit(flow, { code: totpCode(secret, enrolledAt) }, 'enrol-confirm');
    assert.equal(recoveryCodesOn(flow.html).length, 10);
    await submit(flow, {}, 'continue');
    const claims = await tokens(flow);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(claims.acr, ACR_MFA);

    const again = await submit(await start(), { email: USER.email, password: USER.password });
    assert.match(again.html, /autocomplete="one-time-code"/);
    await submit(again, { code: totpCode(secret, enrolledAt) }, 'totp-form');
    assert.equal(pageError(again.html)?.code, 'mfa.code_replayed');
    // The next step's code: accepted now (one step of drift) or later (current), never a replay.
    const nextStep = new Date((totpStep(enrolledAt) + 1) * TOTP_PERIOD_SECONDS * 1000);
    await submit(
      again,
      { code: totpCode(secret, new Date(Math.max(Date.now(), nextStep.getTime()))) },
      'totp-form',
    );
    assert.equal((await tokens(again)).acr, ACR_MFA);

    const token = await orthid.adminToken();
    const listed = await fetch(`${orthid.server.url}/api/v1/tenants/acme/users/${claims.sub}/factors`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(listed.status, 200);
    const body = (await listed.json()) as { factors: { kind: string; lastUsedAt: string | null }[] };
    assert.equal(body.factors.length, 1);
    assert.equal(body.factors[0]!.kind, 'totp');
    assert.ok(body.factors[0]!.lastUsedAt);
    assert.ok(!JSON.stringify(body).includes(secret));

    const cli = async (args: string[]) => {
      const result = await orthid.cli(['user', ...args, '--tenant', 'acme', '--id', claims.sub, '--json']);
      return { code: result.code, out: result.code === 0 ? JSON.parse(result.stdout) : result.stderr };
    };
    const factors = await cli(['factors']);
    assert.equal(factors.out.factors.length, 1);
    assert.ok(!JSON.stringify(factors.out).includes(secret));
    const missing = await cli(['remove-factor', '--factor', '00000000-0000-7000-8000-000000000000']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.out, /mfa\.factor_not_found|No such factor/);
    const reenrol = await cli(['reenrol']);
    assert.deepEqual(reenrol.out, { mustReenrol: true, factorsRemoved: 1 });
    assert.equal((await cli(['factors'])).out.mustReenrol, true);
    const next = await submit(await start(), { email: USER.email, password: USER.password });
    assert.match(next.html, /<h1>Set up your authenticator app<\/h1>/, 'walked through enrolment again');
  });
});
