// End to end: the `airlock` command as an operator runs it, as child processes against a real daemon
// (`airlock start` on a temp data dir, real argon2id), asserting exit codes and what the operator reads.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { stringify as toYaml } from 'yaml';
import { ALICE, MALLORY, USDC, USDC_ASSET, usdcPolicy, usdcTransfer } from '../../server/src/testing/harness.ts';
import { docPolicy } from '../../server/src/testing/doc-policies.ts';
import { cliEnv, runCli, startDaemon, systemNodeLauncher, transcript, waitUnreachable, type CliResult, type Daemon } from './testing/cli-process.ts';
import { createSoftHsmToken, softHsmSkip } from '../../keys/src/softhsm-token.ts';

const PASSPHRASE = 'cli e2e passphrase 7f3a9c';
const COMMANDS = ['init', 'start', 'status', 'agent', 'policy', 'session', 'audit', 'approvals', 'breaker', 'store', 'lightning'];

describe('airlock CLI, end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-'));
  const dataDir = join(dir, 'data');
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  let adminToken = '';
  let daemon: Daemon | undefined;
  let sealedDaemon: Daemon | undefined;
  /** Runs the CLI as the operator's shell would: data dir, daemon URL and admin token in the environment. */
  const airlock = (...args: string[]) => runCli(args, cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_URL: daemon?.url, AIRLOCK_ADMIN_TOKEN: adminToken }));
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  const sign = async (token: string, body: unknown) => {
    const res = await fetch(`${daemon!.url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const goodPolicy = file('good.yaml', toYaml(usdcPolicy()));

  after(async () => {
    await sealedDaemon?.stop();
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('vault and daemon lifecycle', () => {
    test('init prints the 24-word recovery phrase and the admin token once; the vault file is 0600', async () => {
      const r = await runCli(['init'], cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE }));
      const out = ok(r);
      const exports = [...out.matchAll(/^\s*export AIRLOCK_ADMIN_TOKEN=(adm_[A-Za-z0-9_-]+)\s*$/gm)];
      assert.equal(exports.length, 1, out);
      adminToken = exports[0]![1]!;
      assert.equal(out.split(adminToken).length - 1, 1, 'the token is printed exactly once');
      const phrase = /RECOVERY PHRASE[^\n]*\n\s*([a-z ]+)\n/.exec(out)?.[1]?.trim().split(' ');
      assert.equal(phrase?.length, 24, out);
      assert.equal(statSync(join(dataDir, 'vault.json')).mode & 0o777, 0o600);
    });

    test('a second init on the same data dir refuses, names the problem and exits non-zero', async () => {
      const r = await runCli(['init'], cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE }));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error \[vault_exists\]: A vault already exists at .*vault\.json/);
      assert.doesNotMatch(r.stdout, /RECOVERY PHRASE|AIRLOCK_ADMIN_TOKEN/);
    });

    test('start with a wrong passphrase fails with vault_wrong_passphrase and a non-zero exit', async () => {
      const err = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: 'not the passphrase at all' })).then(
        (d) => (sealedDaemon = d) && assert.fail('the daemon started'),
        (e: { code: number; output: string }) => e,
      );
      assert.equal(err.code, 1);
      assert.match(err.output, /error \[vault_wrong_passphrase\]/);
      assert.doesNotMatch(err.output, /not the passphrase at all/);
    });

    test('start without a passphrase and no TTY (via the launcher on the system Node) starts sealed; /v1/unseal unseals; SIGTERM stops it', async (t) => {
      // The launcher on Node < 24 must re-execute on the project's Node 24: run.ts is TypeScript, which
      // only Node 24 runs, so a listening daemon proves the re-exec happened.
      const launcher = systemNodeLauncher();
      if (launcher) t.diagnostic(`system node ${execFileSync(launcher[0]!, ['--version']).toString().trim()} -> bin/airlock.js`);
      sealedDaemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: dataDir }), launcher);
      const url = sealedDaemon.url;
      assert.match(sealedDaemon.output(), /starting sealed/);

      const health = await fetch(`${url}/v1/health`);
      assert.equal(health.status, 503);
      assert.deepEqual(await health.json(), { status: 'sealed' });
      const signing = await fetch(`${url}/v1/sign/transaction`, { method: 'POST', headers: { authorization: 'Bearer ses_x.y', 'content-type': 'application/json' }, body: JSON.stringify(usdcTransfer(ALICE, 1n)) });
      assert.equal(signing.status, 503);
      assert.equal(((await signing.json()) as any).error.code, 'sealed');

      const unseal = (passphrase: string) => fetch(`${url}/v1/unseal`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ passphrase }) });
      assert.equal((await unseal('wrong wrong wrong')).status, 400);
      assert.equal((await unseal(PASSPHRASE)).status, 200);
      assert.equal((await fetch(`${url}/v1/health`)).status, 200);

      // SIGTERM to the launcher must reach the daemon (no orphan keeps the port).
      const code = await sealedDaemon.stop();
      assert.equal(code, 0, sealedDaemon.output());
      assert.ok(await waitUnreachable(url), 'the daemon still answers after the launcher was stopped');
      assert.match(sealedDaemon.output(), /SIGTERM: shutting down/);
      sealedDaemon = undefined;
    });

    test('start with AIRLOCK_PASSPHRASE unseals at once; status says ok and exits 0', async () => {
      daemon = await startDaemon(cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE }));
      assert.match(daemon.output(), /Airlock listening on http:\/\/127\.0\.0\.1:\d+ \(store: sqlite:.*, unsealed\)/);
      const [text, jsonText] = await Promise.all([airlock('status'), airlock('status', '--json')]);
      const out = ok(text);
      assert.match(out, new RegExp(`^daemon  ${daemon.url}: ok \\(store: sqlite\\)$`, 'm'));
      assert.match(out, /^vault   .*vault\.json: argon2id \(memory 64 MiB, 3 passes, parallelism 4\), xchacha20poly1305$/m);
      const json = JSON.parse(ok(jsonText));
      assert.equal(json.health.status, 'ok');
      assert.equal(json.vault.kdf.alg, 'argon2id');
    });
  });

  describe('agents', () => {
    test('agent create --count 100 provisions 100 agents in one command', async (t) => {
      const r = await airlock('agent', 'create', '--count', '100');
      assert.match(ok(r), /^created 100 agents \(first: agent-[0-9a-f]+, last: agent-[0-9a-f]+\)$/m);
      t.diagnostic(`agent create --count 100: ${Math.round(r.ms)} ms (whole CLI process)`);
    });

    test('agent create --name alice prints a table; a duplicate name is a conflict', async () => {
      const out = ok(await airlock('agent', 'create', '--name', 'alice'));
      const [header, row, ...rest] = out.trim().split('\n');
      assert.match(header!, /^ID\s+NAME\s+STATUS\s+ACCOUNTINDEX\s+ADDRESS$/);
      assert.match(row!, /^ag_[0-9a-f]+\s+alice\s+active\s+100\s+0x[0-9a-f]{40}$/);
      assert.equal(rest.length, 0);
      const dup = await airlock('agent', 'create', '--name', 'alice');
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /^error \[conflict\]: /);
      const dupJson = await airlock('agent', 'create', '--name', 'alice', '--json');
      assert.equal(JSON.parse(dupJson.stderr).error.code, 'conflict');
    });

    test('agent list shows 101 rows under one header; --json is the same set', async () => {
      const lines = ok(await airlock('agent', 'list')).trim().split('\n');
      assert.equal(lines.length, 102);
      assert.match(lines[0]!, /^ID\s+NAME\s+STATUS/);
      assert.equal(lines.filter((l) => /\sactive\s/.test(l)).length, 101);
      const json = JSON.parse(ok(await airlock('agent', 'list', '--json')));
      assert.equal(json.agents.length, 101);
      assert.equal(new Set(json.agents.map((a: { address: string }) => a.address)).size, 101, 'one key per agent');
      const two = JSON.parse(ok(await airlock('agent', 'list', '--limit', '2', '--json')));
      assert.equal(two.agents.length, 2);
    });

    test('agent show, freeze, unfreeze, retire', async () => {
      // Three independent stories, run side by side to keep the suite fast.
      await Promise.all([
        (async () => {
          assert.match(ok(await airlock('agent', 'show', 'alice')), /alice\s+active\s+100\s+0x[0-9a-f]{40}\s+\d{4}-\d\d-\d\dT/);
          assert.equal(ok(await airlock('agent', 'freeze', 'alice')).trim(), 'alice: frozen');
          assert.equal(JSON.parse(ok(await airlock('agent', 'show', 'alice', '--json'))).status, 'frozen');
          assert.equal(ok(await airlock('agent', 'unfreeze', 'alice')).trim(), 'alice: active');
        })(),
        (async () => {
          ok(await airlock('agent', 'create', '--name', 'short-lived'));
          // No RPC on this daemon: nothing to read, nothing to sweep, and the key is retired at once.
          assert.equal(ok(await airlock('agent', 'retire', 'short-lived')).trim(), 'short-lived: retired; key retired');
          assert.match(ok(await airlock('agent', 'list', '--status', 'retired')), /short-lived\s+retired/);
          ok(await airlock('agent', 'create', '--name', 'kept-funds'));
          assert.equal(JSON.parse(ok(await airlock('agent', 'retire', 'kept-funds', '--no-sweep', '--json'))).sweep.jobs.length, 0);
          assert.equal(ok(await airlock('agent', 'sweep', 'short-lived')).trim(), 'nothing to sweep');
          assert.equal(ok(await airlock('lifecycle', 'jobs')).trim(), '(none)');
          assert.equal((await airlock('agent', 'sweep', 'short-lived', '--to', 'elsewhere')).code, 2);
        })(),
        (async () => {
          const missing = await airlock('agent', 'show', 'nobody');
          assert.equal(missing.code, 1);
          assert.match(missing.stderr, /error \[not_found\]/);
        })(),
      ]);
    });

    test('agent rotate prints the old and new address; keys, show and list --address keep the old one attributable', async () => {
      const [created] = JSON.parse(ok(await airlock('agent', 'create', '--name', 'rotor', '--json'))).agents;
      const old = created.address as string;
      const out = ok(await airlock('agent', 'rotate', 'rotor'));
      const fresh = /^new address\s+(0x[0-9a-f]{40})$/m.exec(out)?.[1];
      assert.match(out, /^rotor: key 0 -> 1$/m);
      assert.match(out, new RegExp(`^old address\\s+${old}\\s`, 'm'));
      assert.ok(fresh && fresh !== old, out);
      const keys = ok(await airlock('agent', 'keys', 'rotor')).trim().split('\n');
      assert.match(keys[0]!, /^KEYINDEX\s+ADDRESS\s+STATE/);
      assert.match(keys[1]!, new RegExp(`^0\\s+${old}\\s+rotated\\s`));
      assert.match(keys[2]!, new RegExp(`^1\\s+${fresh}\\s+active\\s`));
      const shown = ok(await airlock('agent', 'show', 'rotor'));
      assert.match(shown, new RegExp(`rotor\\s+active\\s+\\d+\\s+${fresh}\\s`));
      assert.match(shown, /^keys:$/m);
      assert.match(shown, new RegExp(`1\\s+${fresh}\\s+active`));
      assert.match(shown, new RegExp(`0\\s+${old}\\s+rotated`));
      assert.deepEqual(JSON.parse(ok(await airlock('agent', 'show', 'rotor', '--json'))).keys.map((k: any) => k.address), [old, fresh]);
      assert.match(ok(await airlock('agent', 'list', '--address', old)), new RegExp(`rotor\\s+active\\s+\\d+\\s+${fresh}`));
      assert.equal(ok(await airlock('agent', 'list', '--address', MALLORY)).trim(), 'no agent ever had this address');
      // A retired agent keeps its last key.
      const retired = await airlock('agent', 'rotate', 'short-lived');
      assert.equal(retired.code, 1);
      assert.match(retired.stderr, /error \[agent_retired\]/);
    });

    test('bad arguments are usage errors (exit 2), not requests with garbage', async () => {
      const cases = [['agent', 'create', '--count', 'abc'], ['agent', 'create', '--count', '0'], ['agent', 'create', '--name', 'x', '--label', 'novalue'], ['agent', 'list', '--limit', '-1'], ['agent', 'frobnicate'], ['agent', 'list', '--bogus']];
      const results = await Promise.all(cases.map((args) => airlock(...args)));
      for (const [i, args] of cases.entries()) {
        const r = results[i]!;
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /--count|--label|--limit|usage:/, args.join(' '));
      }
    });
  });

  describe('policy', () => {
    test('validate: a good file exits 0; a bad one exits 1 naming the exact path', async () => {
      assert.match(ok(await airlock('policy', 'validate', goodPolicy)), /good\.yaml: valid$/m);
      const bad = file('bad.yaml', toYaml({ version: 1, rules: [{ name: 'cap', type: 'max_amount', asset: USDC_ASSET, max: '-5' }] }));
      const r = await airlock('policy', 'validate', bad);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /error \[invalid_policy\]: rules\[0\]\.max: /);
    });

    test('every issue of an invalid policy is shown, in text and in --json, by validate and by set', async () => {
      const bad = file('many-bad.yaml', toYaml({ version: 1, rules: [
        { name: 'cap', type: 'max_amount', asset: USDC_ASSET, max: '-5' },
        { name: 'daily', type: 'budget', asset: 'not-an-asset', max: '10', window: 'forever', scope: 'agent' },
      ] }));
      const paths = ['rules[0].max', 'rules[1].asset', 'rules[1].window'];
      const [text, json, set, setJson] = await Promise.all([
        airlock('policy', 'validate', bad), airlock('policy', 'validate', bad, '--json'),
        airlock('policy', 'set', 'alice', bad), airlock('policy', 'set', 'alice', bad, '--json'),
      ]);
      for (const r of [text, set]) {
        assert.equal(r.code, 1);
        for (const p of paths) assert.match(r.stderr, new RegExp(`^  ${p.replace(/[[\].]/g, '\\$&')}: `, 'm'), `${p} in ${r.stderr}`);
      }
      for (const r of [json, setJson]) {
        assert.equal(r.code, 1);
        const { error } = JSON.parse(r.stderr);
        assert.equal(error.code, 'invalid_policy');
        assert.deepEqual(error.issues.map((i: { path: string }) => i.path), paths);
      }
    });

    test('set, show, versions, diff', async () => {
      assert.match(ok(await airlock('policy', 'set', 'alice', goodPolicy)), /^alice: now version 1 \([0-9a-f]{12}\)$/m);
      assert.match(ok(await airlock('policy', 'set', 'alice', goodPolicy)), /^alice: unchanged \(version 1\)$/m);
      const shown = ok(await airlock('policy', 'show', 'alice'));
      assert.match(shown, /^# alice version 1 \([0-9a-f]{12}\) by admin$/m);
      // The text as set (YAML, in the operator's key order), not sorted JSON; --json is the normalised form.
      assert.ok(shown.endsWith(readFileSync(goodPolicy, 'utf8')), shown);
      const normalised = JSON.parse(ok(await airlock('policy', 'show', 'alice', '--json')));
      assert.equal(normalised.document.rules[0].name, 'usdc-to-partners');
      assert.equal(normalised.source, undefined);

      const tighter = file('tighter.yaml', `# tighter: 50 USDC per request\n${toYaml(usdcPolicy({ perRequest: '50000000' }))}`);
      assert.match(ok(await airlock('policy', 'set', 'alice', tighter)), /now version 2/);
      assert.match(ok(await airlock('policy', 'show', 'alice')), /^# tighter: 50 USDC per request$/m);
      assert.doesNotMatch(ok(await airlock('policy', 'show', 'alice', '--version', '1')), /tighter/);
      const versions = ok(await airlock('policy', 'versions', 'alice')).trim().split('\n');
      assert.match(versions[0]!, /^VERSION\s+HASH\s+AUTHOR\s+CREATEDAT$/);
      assert.deepEqual(versions.slice(1).map((l) => l.split(/\s+/)[0]), ['2', '1']);
      const diff = ok(await airlock('policy', 'diff', 'alice'));
      assert.match(diff, /^--- alice v1\n\+\+\+ alice v2$/m);
      assert.match(diff, /^-\s+max: "100000000"$/m);
      assert.match(diff, /^\+\s+max: "50000000"$/m);
    });

    test('dry-run shows DENY with the rule that refused (exit 3), and ALLOW for an allowed request (exit 0)', async () => {
      const denied = (r: CliResult) => {
        assert.equal(r.code, 3, `a denial exits 3\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
        return r.stdout;
      };
      const tooBig = file('too-big.json', JSON.stringify(usdcTransfer(ALICE, 60_000_000n)));
      const deny = denied(await airlock('policy', 'dry-run', '--agent', 'alice', '--action', 'evm.transaction', tooBig));
      assert.match(deny, /^DENY  transfer 60000000 of /m);
      assert.match(deny, /^\s+agent\/usdc-per-request\s+amount_exceeds_max: /m);
      const stranger = file('stranger.json', JSON.stringify(usdcTransfer(MALLORY, 1n)));
      assert.match(denied(await airlock('policy', 'dry-run', '--agent', 'alice', '--action', 'evm.transaction', stranger)), /^\s+agent\/default\s+no_matching_allow_rule/m);
      const fine = file('fine.json', JSON.stringify(usdcTransfer(ALICE, 1_000_000n)));
      assert.match(ok(await airlock('policy', 'dry-run', '--agent', 'alice', '--action', 'evm.transaction', fine)), /^ALLOW  /);
      const json = JSON.parse(denied(await airlock('policy', 'dry-run', '--agent', 'alice', '--action', 'evm.transaction', tooBig, '--json')));
      assert.equal(json.decision.decision, 'deny');
      assert.deepEqual(json.decision.violations.map((v: { rule: string }) => v.rule), ['agent/usdc-per-request']);
    });
  });

  describe('shadow policies', () => {
    test('shadow set, dry-run, show, diff, promote: a looser candidate tried on real traffic, then made the policy', async () => {
      ok(await airlock('agent', 'create', '--name', 'shady'));
      ok(await airlock('policy', 'set', 'shady', file('shady.yaml', toYaml(usdcPolicy({ perRequest: '50000000' })))));
      const looser = file('looser.yaml', `# looser: 100 USDC per request\n${toYaml(usdcPolicy())}`);
      assert.match(ok(await airlock('policy', 'shadow', 'set', 'shady', looser)), /^shady: candidate shd_[0-9a-f]{16} staged \([0-9a-f]{12}\)/m);
      assert.match(ok(await airlock('policy', 'shadow', 'set', 'shady', looser)), /already staged/);

      const big = file('big.json', JSON.stringify(usdcTransfer(ALICE, 60_000_000n)));
      const dry = await airlock('policy', 'dry-run', '--agent', 'shady', '--action', 'evm.transaction', big);
      assert.equal(dry.code, 3, 'the active policy decides the exit code');
      assert.match(dry.stdout, /^shadow agent:ag_[0-9a-f]{16}: ALLOW  \(would_allow\)$/m);

      const { token } = JSON.parse(ok(await airlock('session', 'issue', 'shady', '--actions', 'evm.transaction', '--json')));
      const refused = await sign(token, usdcTransfer(ALICE, 60_000_000n, 1));
      assert.equal(refused.status, 403);
      assert.equal((await sign(token, usdcTransfer(ALICE, 1_000_000n, 2))).status, 200);

      const shown = ok(await airlock('policy', 'shadow', 'show', 'shady'));
      assert.match(shown, /^# would replace version 1 \([0-9a-f]{12}\)$/m);
      assert.match(shown, /^# 2 evaluated: 1 same, 1 would allow, 0 would deny, 0 would require approval, 0 other rules, 0 errors$/m);
      assert.match(shown, /^# looser: 100 USDC per request$/m);
      const diff = ok(await airlock('policy', 'shadow', 'diff', 'shady'));
      assert.match(diff, new RegExp(`^#${refused.body.auditSeq}  ag_[0-9a-f]{16}  would_allow  `, 'm'));
      assert.match(diff, /^  active     DENY  agent\/usdc-per-request amount_exceeds_max$/m);
      assert.match(diff, /^  candidate  ALLOW  agent\/usdc-to-partners$/m);
      assert.equal(JSON.parse(ok(await airlock('policy', 'shadow', 'diff', 'shady', '--json'))).differences.length, 1);

      assert.match(ok(await airlock('policy', 'shadow', 'promote', 'shady')), /^shady: candidate promoted, now version 2 \([0-9a-f]{12}\)$/m);
      assert.equal((await sign(token, usdcTransfer(ALICE, 60_000_000n, 3))).status, 200, 'the promoted candidate decides');
      const gone = await airlock('policy', 'shadow', 'show', 'shady');
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /error \[not_found\]/);

      const bad = await airlock('policy', 'shadow', 'set', 'shady', file('bad-shadow.yaml', toYaml({ version: 1, rules: [{ name: 'cap', type: 'max_amount', asset: USDC_ASSET, max: '-5' }] })));
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /error \[invalid_policy\]/);
      assert.equal((await airlock('policy', 'shadow', 'frobnicate', 'shady')).code, 2);
      ok(await airlock('policy', 'shadow', 'set', 'shady', looser));
      assert.match(ok(await airlock('policy', 'shadow', 'clear', 'shady')), /^shady: candidate shd_[0-9a-f]{16} unstaged \(0 evaluated/m);
    });
  });

  describe('dependency map', () => {
    test('agent deps lists what the key granted with its audit entry; --reconcile without an RPC says unknown, never "not live"', async () => {
      ok(await airlock('agent', 'create', '--name', 'granter'));
      const policy = { version: 1, rules: [{ name: 'approvals', type: 'allow', match: { chains: ['eip155:8453'], kinds: ['erc20.approve'] } }] };
      ok(await airlock('policy', 'set', 'granter', file('granter.yaml', toYaml(policy))));
      const { token } = JSON.parse(ok(await airlock('session', 'issue', 'granter', '--actions', 'evm.transaction', '--json')));
      const transfer = usdcTransfer(ALICE, 250n);
      const approve = { ...transfer, transaction: { ...transfer.transaction, data: `0x095ea7b3${transfer.transaction.data.slice(10)}` } };
      const signed = await sign(token, approve);
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      const out = ok(await airlock('agent', 'deps', 'granter'));
      assert.match(out, /^grants: 1$/m);
      assert.match(out, new RegExp(`^${signed.body.auditSeq}\\s+erc20\\.approve\\s+eip155:8453\\s+${USDC}\\s+${ALICE}\\s+250\\s+-$`, 'm'));
      assert.match(out, /^open sessions: 1$/m);
      const reconciled = ok(await airlock('agent', 'deps', 'granter', '--reconcile'));
      assert.match(reconciled, /reconciled against the chain/);
      assert.match(reconciled, /unknown \(no_rpc\)$/m);
      const json = JSON.parse(ok(await airlock('agent', 'deps', 'granter', '--reconcile', '--json')));
      assert.deepEqual([json.grants[0].auditSeq, json.grants[0].live, json.grants[0].evidence.reason], [signed.body.auditSeq, 'unknown', 'no_rpc']);
      assert.equal((await airlock('agent', 'deps')).code, 2);
      const missing = await airlock('agent', 'deps', 'nobody');
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /error \[not_found\]/);
    });
  });

  describe('policy warnings', () => {
    // The README walkthrough policy before issue 7: any token to the partners, authorizations valid forever.
    const unsafe = `version: 1
sets:
  partners: ["0x1111111111111111111111111111111111111111"]
rules:
  - name: usdc-to-partners
    type: allow
    match: { chains: [eip155:8453], kinds: [erc20.transfer, eip3009.transfer_with_authorization], to: $partners }
  - { name: usdc-per-request, type: max_amount, asset: ${USDC_ASSET}, max: "100000000" }
  - { name: usdc-daily, type: budget, asset: ${USDC_ASSET}, max: "500000000", window: 24h, scope: agent }
`;

    test('validate and set print what an unsafe policy lets through, on stderr with stable codes; the README policy has none', async () => {
      const path = file('unsafe.yaml', unsafe);
      const r = await airlock('policy', 'validate', path);
      assert.match(ok(r), /unsafe\.yaml: valid$/m);
      assert.match(r.stderr, /^warning allow_without_assets at rules\[0\]\.match: /m);
      assert.match(r.stderr, /^warning validity_unbounded at rules\[0\]\.match: /m);
      const json = JSON.parse(ok(await airlock('policy', 'validate', path, '--json')));
      assert.deepEqual(json.warnings.map((w: { code: string }) => w.code), ['allow_without_assets', 'validity_unbounded']);

      const readme = file('readme.yaml', docPolicy('README.md#Five-minute walkthrough').source);
      const clean = await airlock('policy', 'validate', readme);
      assert.match(ok(clean), /readme\.yaml: valid$/m);
      assert.doesNotMatch(clean.stderr, /warning/);

      ok(await airlock('agent', 'create', '--name', 'warned'));
      const set = await airlock('policy', 'set', 'warned', path);
      assert.match(ok(set), /^warned: now version 1 /m);
      assert.match(set.stderr, /^warning allow_without_assets at rules\[0\]\.match: /m);
    });

    test('validate refuses an ABI fragment that does not parse, naming its path', async () => {
      const bad = file('bad-abi.yaml', `version: 1
abis:
  router: { contracts: ["0x2626664c2603336e57b271c5c0b26f421741e481"], functions: ["function swap(adress token)"] }
rules: []
`);
      const r = await airlock('policy', 'validate', bad);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /error \[invalid_policy\]: abis\.router\.functions\[0\]: /);
    });
  });

  describe('sessions and approvals', () => {
    test('session issue prints the token once; it signs within its budget; revoke makes it 401 session_revoked', async () => {
      const out = ok(await airlock('session', 'issue', 'alice', '--ttl', '1h', '--actions', 'evm.transaction', '--budget', `${USDC_ASSET}:8000000:24h`));
      const sessionId = /^session (ses_[0-9a-f]+) for alice, expires /m.exec(out)?.[1];
      const token = /^\s+(ses_[0-9a-f]+\.[A-Za-z0-9_-]+)$/m.exec(out)?.[1];
      assert.ok(sessionId && token, out);
      assert.equal(out.split(token).length - 1, 1, 'the token is printed once');

      const signed = await sign(token, usdcTransfer(ALICE, 5_000_000n));
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
      assert.match(signed.body.signedTransaction, /^0x02/);
      const over = await sign(token, usdcTransfer(ALICE, 5_000_000n, 1));
      assert.equal(over.status, 403);
      assert.equal(over.body.error.violations[0].code, 'budget_exceeded');

      const list = ok(await airlock('session', 'list'));
      assert.match(list, /^ID\s+AGENTID\s+ACTIONS\s+CHAINS\s+EXPIRESAT\s+REVOKEDAT$/m);
      assert.match(list, new RegExp(`^${sessionId}\\s+ag_[0-9a-f]+\\s+evm\\.transaction\\s+\\*\\s+\\d{4}-`, 'm'));
      assert.ok(!list.includes(token.split('.')[1]!), 'list never shows a token');

      assert.match(ok(await airlock('session', 'revoke', sessionId)), new RegExp(`^${sessionId}: revoked at \\d{4}-`, 'm'));
      const refused = await sign(token, usdcTransfer(ALICE, 1n, 2));
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error.code, 'session_revoked');
      assert.doesNotMatch(ok(await airlock('session', 'list')), new RegExp(sessionId));
      assert.match(ok(await airlock('session', 'list', '--all')), new RegExp(`${sessionId}.*\\d{4}-.*\\d{4}-`));

      const malformed = await airlock('session', 'issue', 'alice', '--budget', 'foo');
      assert.equal(malformed.code, 2);
      assert.match(malformed.stderr, /--budget: expected <asset>:<max base units>:<window>/);
    });

    test('session tree shows the child sessions an agent derived; revoking the root revokes them all', async () => {
      const { token, session } = JSON.parse(ok(await airlock('session', 'issue', 'alice', '--actions', 'evm.transaction', '--label', 'root', '--json')));
      const derive = async (parentToken: string, body: unknown) => {
        const res = await fetch(`${daemon!.url}/v1/session/children`, { method: 'POST', headers: { authorization: `Bearer ${parentToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal(res.status, 201);
        return (await res.json()) as { token: string; session: { id: string } };
      };
      const child = await derive(token, { label: 'worker' });
      const grandchild = await derive(child.token, { ttlSeconds: 60 });
      const sibling = await derive(token, {});
      const tree = ok(await airlock('session', 'tree', 'alice'));
      const lines = tree.split('\n');
      const at = lines.findIndex((l) => l.startsWith(`${session.id}  evm.transaction  *  expires `));
      assert.ok(at >= 0 && lines[at]!.endsWith('"root"'), tree);
      assert.match(lines[at + 1]!, new RegExp(`^├─ ${child.session.id}  evm\\.transaction  \\*  expires \\S+  "worker"$`));
      assert.match(lines[at + 2]!, new RegExp(`^│  └─ ${grandchild.session.id}  `));
      assert.match(lines[at + 3]!, new RegExp(`^└─ ${sibling.session.id}  `));
      assert.ok(!tree.includes(child.token.split('.')[1]!), 'no token is shown');

      ok(await airlock('session', 'revoke', session.id));
      assert.equal((await sign(grandchild.token, usdcTransfer(ALICE, 1n, 9))).body.error.code, 'session_revoked');
      assert.doesNotMatch(ok(await airlock('session', 'tree', 'alice')), new RegExp(child.session.id));
      const all = ok(await airlock('session', 'tree', 'alice', '--all'));
      for (const id of [child.session.id, grandchild.session.id, sibling.session.id]) assert.match(all, new RegExp(`${id} .*revoked \\d{4}-`));
      assert.equal((await airlock('session', 'tree')).code, 2, 'the agent is required');
    });

    test('approvals: a request above the approval tier waits (202); list, approve, deny', async () => {
      ok(await airlock('policy', 'set', 'alice', file('approvals.yaml', toYaml(usdcPolicy({ perRequest: '50000000', approvalAbove: '1000000' })))));
      const waits = await airlock('policy', 'dry-run', '--agent', 'alice', '--action', 'evm.transaction', file('waits.json', JSON.stringify(usdcTransfer(ALICE, 5_000_000n, 50))));
      assert.equal(waits.code, 4, `a request that needs approval exits 4: ${waits.stdout}${waits.stderr}`);
      assert.match(waits.stdout, /^REQUIRE_APPROVAL  /m);
      const { token } = JSON.parse(ok(await airlock('session', 'issue', 'alice', '--actions', 'evm.transaction', '--json')));
      const first = await sign(token, usdcTransfer(ALICE, 5_000_000n));
      const second = await sign(token, usdcTransfer(ALICE, 6_000_000n, 1));
      assert.equal(first.status, 202);
      assert.equal(second.status, 202);
      const [a1, a2] = [first.body.approvalId as string, second.body.approvalId as string];

      const list = ok(await airlock('approvals', 'list'));
      assert.match(list, /^ID\s+AGENTID\s+STATE\s+REQUEST\s+RULE\s+EXPIRESAT$/m);
      assert.match(list, new RegExp(`^${a1}\\s+ag_[0-9a-f]+\\s+pending\\s+transfer 5000000 of .*agent/big-needs-human`, 'm'));
      assert.match(list, new RegExp(`^${a2}\\s`, 'm'));

      const [approved, denied] = await Promise.all([airlock('approvals', 'approve', a1), airlock('approvals', 'deny', a2, '--reason', 'too much')]);
      assert.equal(ok(approved).trim(), `${a1}: approved`);
      assert.equal(ok(denied).trim(), `${a2}: denied`);
      const [again, pending, allJson] = await Promise.all([airlock('approvals', 'approve', a1), airlock('approvals', 'list'), airlock('approvals', 'list', '--state', 'all', '--json')]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /error \[approval_not_pending\]/);
      assert.equal(ok(pending).trim(), '(none)');
      const all = JSON.parse(ok(allJson));
      assert.deepEqual(Object.fromEntries(all.approvals.map((a: { id: string; state: string }) => [a.id, a.state])), { [a1]: 'approved', [a2]: 'denied' });
    });
    test('breaker: a run of refusals freezes the agent; breaker list shows it, breaker reset re-opens it (audited) and signing resumes', async () => {
      ok(await airlock('agent', 'create', '--name', 'carol'));
      const policy = { ...usdcPolicy(), detectors: [{ name: 'probing', type: 'refusal_run', max: 2, window: '10m', action: 'freeze' }] };
      ok(await airlock('policy', 'set', 'carol', file('carol.yaml', toYaml(policy))));
      const { token } = JSON.parse(ok(await airlock('session', 'issue', 'carol', '--actions', 'evm.transaction', '--json')));
      assert.equal((await sign(token, usdcTransfer(MALLORY, 1n))).status, 403);
      const trip = await sign(token, usdcTransfer(MALLORY, 1n, 1));
      assert.equal(trip.body.error.violations.at(-1).code, 'breaker_tripped');
      assert.equal((await sign(token, usdcTransfer(ALICE, 1n, 2))).body.error.code, 'agent_frozen');
      const list = ok(await airlock('breaker', 'list'));
      assert.match(list, /^ID\s+DETECTOR\s+ACTION\s+SCOPE\s+STATE\s+AGENTS\s+OBSERVED\s+THRESHOLD\s+TRIPPEDAT$/m);
      const id = new RegExp('^(brk_[0-9a-f]+)\\s+detector/agent/probing\\s+freeze\\s+agent\\s+tripped\\s+1\\s+2\\s+2\\s', 'm').exec(list)?.[1];
      assert.ok(id, list);
      assert.match(ok(await airlock('breaker', 'reset', id)), new RegExp(`^${id}: reset; unfrozen: ag_[0-9a-f]+$`, 'm'));
      const again = await airlock('breaker', 'reset', id);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /error \[breaker_not_tripped\]/);
      assert.equal((await sign(token, usdcTransfer(ALICE, 1n, 3))).status, 200);
      assert.equal(ok(await airlock('breaker', 'list')).trim(), '(none)');
    });
  });

  describe('audit', () => {
    test('tail shows the newest entries; --decision deny --json finds denies even behind many newer entries', async () => {
      // Push the denies of the previous tests out of the newest 20 entries.
      const { token } = JSON.parse(ok(await airlock('session', 'issue', 'alice', '--actions', 'evm.transaction', '--json')));
      for (let i = 0; i < 25; i++) assert.equal((await sign(token, usdcTransfer(ALICE, 1n, 100 + i))).status, 200);

      const lines = ok(await airlock('audit', 'tail')).trim().split('\n');
      assert.match(lines[0]!, /^SEQ\s+AT\s+TYPE\s+AGENTID\s+DECISION\s+DETAIL$/);
      assert.equal(lines.length, 21);
      assert.ok(lines.slice(1).every((l) => /^\d+\s+\d{4}-\d\d-\d\dT\S+\s+sign\.request\s+ag_\S+\s+allow\s+transfer 1 of /.test(l)), lines.join('\n'));

      const denies = ok(await airlock('audit', 'tail', '--decision', 'deny', '--json')).trim().split('\n').map((l) => JSON.parse(l));
      assert.ok(denies.length >= 2, `expected the budget deny and the denied approval, got ${denies.length}`);
      assert.ok(denies.every((e) => e.decision === 'deny'));
      assert.ok(denies.some((e) => e.data.violations?.[0]?.code === 'budget_exceeded'));
      assert.ok(denies.some((e) => e.type === 'approval.denied'));
    });

    test('verify (daemon), export, verify --file; an edited entry fails with exit 2 at that entry', async () => {
      const exported = join(dir, 'f.jsonl');
      const [verified, exporting] = await Promise.all([airlock('audit', 'verify'), airlock('audit', 'export', '--out', exported)]);
      assert.match(ok(verified), /^OK: \d+ entries, \d+ signed tree heads, root [0-9a-f]{16}…/);
      assert.match(ok(exporting), /^exported \d+ entries and \d+ signed tree heads to /);
      assert.equal(statSync(exported).mode & 0o777, 0o600);
      assert.match(ok(await airlock('audit', 'verify', '--file', exported)), /^OK: /);

      const lines = readFileSync(exported, 'utf8').trim().split('\n');
      const index = lines.findIndex((l, i) => i > 0 && JSON.parse(l).type === 'approval.denied');
      const entry = JSON.parse(lines[index]!);
      entry.data.reason = 'looked fine to me';
      lines[index] = JSON.stringify(entry);
      const tampered = file('tampered.jsonl', `${lines.join('\n')}\n`);
      lines[index] = 'not json';
      const garbledFile = file('garbled.jsonl', lines.join('\n'));
      const [r, json, garbled, missing] = await Promise.all([
        airlock('audit', 'verify', '--file', tampered),
        airlock('audit', 'verify', '--file', tampered, '--json'),
        airlock('audit', 'verify', '--file', garbledFile),
        airlock('audit', 'verify', '--file', join(dir, 'nope.jsonl')),
      ]);
      assert.equal(r.code, 2);
      assert.match(r.stdout, new RegExp(`^FAILED at entry ${entry.seq}: entry data does not match its stored leaf`, 'm'));
      assert.equal(json.code, 2);
      assert.deepEqual(JSON.parse(json.stdout).firstBad.seq, entry.seq);
      assert.equal(garbled.code, 2);
      assert.match(garbled.stdout, new RegExp(`^FAILED at entry ${entry.seq}: line ${index + 1} is not an audit entry`, 'm'));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /error \[not_found\]: No export file at /);
    });
  });

  describe('nostr', () => {
    const NOSTR_POLICY = { version: 1, rules: [{ type: 'allow', name: 'notes', match: { actions: ['nostr.event'], nostr_kinds: [1] } }] };
    const signNostr = async (token: string, kind: number, content: string) => {
      const res = await fetch(`${daemon!.url}/v1/sign/nostr-event`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind, tags: [], content, created_at: Math.floor(Date.now() / 1000) }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    test('agent show prints the npub; audit tail --action nostr.event lists the signatures with event id, kind and decision', async () => {
      ok(await airlock('agent', 'create', '--name', 'poster'));
      ok(await airlock('policy', 'set', 'poster', file('nostr.yaml', toYaml(NOSTR_POLICY))));
      const { token } = JSON.parse(ok(await airlock('session', 'issue', 'poster', '--actions', 'nostr.event', '--json')));
      const identity = (await (await fetch(`${daemon!.url}/v1/nostr/identity`, { headers: { authorization: `Bearer ${token}` } })).json()) as { pubkey: string; npub: string };

      const shown = ok(await airlock('agent', 'show', 'poster'));
      assert.match(shown.split('\n')[0]!, /\sNPUB$/);
      assert.match(shown, new RegExp(`^ag_[0-9a-f]+\\s+poster\\s+active\\s+\\d+\\s+0x[0-9a-f]{40}\\s+\\S+\\s+${identity.npub}$`, 'm'));
      assert.deepEqual(JSON.parse(ok(await airlock('agent', 'show', 'poster', '--json'))).nostr, { pubkey: identity.pubkey, npub: identity.npub });

      const note = await signNostr(token, 1, 'hello relays');
      assert.equal(note.status, 200, JSON.stringify(note.body));
      const deletion = await signNostr(token, 5, '');
      assert.equal(deletion.status, 403);
      // An EVM request by the same agent is not a Nostr signature and must not be listed.
      assert.equal((await sign(token, usdcTransfer(ALICE, 1n, 1))).status, 403);

      const lines = ok(await airlock('audit', 'tail', '--agent', 'poster', '--action', 'nostr.event')).trim().split('\n');
      assert.match(lines[0]!, /^SEQ\s+AT\s+ACTION\s+KIND\s+EVENTID\s+DECISION\s+DETAIL$/);
      assert.equal(lines.length, 3, lines.join('\n'));
      assert.match(lines[1]!, new RegExp(`^${note.body.auditSeq}\\s+\\d{4}-\\S+\\s+nostr\\.event\\s+1\\s+${note.body.event.id}\\s+allow$`));
      assert.match(lines[2]!, new RegExp(`^${deletion.body.auditSeq}\\s+\\S+\\s+nostr\\.event\\s+5\\s+[0-9a-f]{64}\\s+deny\\s+agent/default:nostr_kind_not_allowed$`));

      const json = ok(await airlock('audit', 'tail', '--agent', 'poster', '--type', 'sign.request', '--action', 'nostr.event', '--limit', '1', '--json')).trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(json.map((e) => [e.seq, e.decision, e.data.intent.nostr.eventKind]), [[deletion.body.auditSeq, 'deny', 5]]);
      assert.match(ok(await airlock('audit', 'tail', '--agent', 'poster', '--action', 'nostr.http_auth')), /^\(no matching entries\)$/m);
    });
  });

  describe('help and errors', () => {
    test('an unknown command exits 2 with the help; no command at all also exits 2', async () => {
      const [r, bare, help] = await Promise.all([airlock('frobnicate'), airlock(), airlock('--help')]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^unknown command: frobnicate/);
      assert.match(r.stderr, /usage: airlock <command> \[options\]/);
      assert.equal(bare.code, 2);
      assert.match(bare.stdout, /usage: airlock <command>/);
      assert.match(ok(help), /usage: airlock <command>/);
    });

    test('--help of every command exits 0 and shows its usage', async () => {
      const results = await Promise.all(COMMANDS.map((name) => airlock(name, '--help')));
      for (const [i, name] of COMMANDS.entries()) {
        const out = ok(results[i]!);
        assert.match(out, new RegExp(`^usage:\\nairlock ${name}`, 'm'), name);
      }
    });

    test('no daemon at the URL: a clear "cannot reach" message, exit 1; status exits 1', async () => {
      // A port that was just free: nothing listens there (port 9 would be refused by fetch itself, a "bad port").
      const closedPort = await new Promise<number>((resolve) => {
        const s = createNetServer().listen(0, '127.0.0.1', () => {
          const { port } = s.address() as AddressInfo;
          s.close(() => resolve(port));
        });
      });
      const env = cliEnv({ AIRLOCK_URL: `http://127.0.0.1:${closedPort}`, AIRLOCK_ADMIN_TOKEN: adminToken, AIRLOCK_DATA_DIR: dataDir });
      const [r, status, noToken] = await Promise.all([runCli(['agent', 'list'], env), runCli(['status'], env), runCli(['agent', 'list'], cliEnv({ AIRLOCK_URL: daemon!.url, AIRLOCK_ADMIN_TOKEN: '' }))]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.split('\n')[0], `error [unreachable]: cannot reach the Airlock daemon at http://127.0.0.1:${closedPort}: nothing is listening there (ECONNREFUSED).`);
      assert.equal(status.code, 1);
      assert.match(status.stdout, /: unreachable$/m);
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /error \[unauthenticated\]: No admin token\.\n\s+hint: Set AIRLOCK_ADMIN_TOKEN/);
    });

    test('the launcher on the system Node runs commands on Node 24', async (t) => {
      const launcher = systemNodeLauncher();
      if (!launcher) return t.skip('no /usr/bin/node on this machine');
      const env = cliEnv({ AIRLOCK_URL: daemon!.url, AIRLOCK_ADMIN_TOKEN: adminToken, AIRLOCK_DATA_DIR: dataDir });
      const [shown, unknown] = await Promise.all([runCli(['agent', 'show', 'alice'], env, launcher), runCli(['frobnicate'], env, launcher)]);
      assert.match(ok(shown), /alice\s+active/);
      assert.equal(unknown.code, 2, 'exit codes pass through the launcher');
    });
  });

  describe('after the daemon stops', () => {
    test('SIGTERM shuts down cleanly; audit verify --offline reads the store directly', async () => {
      const url = daemon!.url;
      assert.equal(await daemon!.stop(), 0);
      assert.match(daemon!.output(), /SIGTERM: shutting down/);
      assert.ok(await waitUnreachable(url));
      const r = await runCli(['audit', 'verify', '--offline', '--data-dir', dataDir], cliEnv());
      assert.match(ok(r), /^OK: \d+ entries, \d+ signed tree heads/);
    });

    test('the passphrase never appeared in any output', () => {
      assert.ok(transcript.length > 50);
      for (const text of transcript) assert.ok(!text.includes(PASSPHRASE), 'passphrase leaked into output');
    });
  });
});

describe('first-run secrets file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-first-run-'));
  const dataDir = join(dir, 'data');
  const secrets = join(dataDir, 'first-run-secrets.txt');
  const env = cliEnv({ AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, AIRLOCK_URL: 'http://127.0.0.1:9' });
  const WARNING = /warning: .*first-run-secrets\.txt holds the recovery phrase and the admin token in clear/;
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every start and every status warn on stderr while the file exists; once it is deleted, they stop', async () => {
    // A first start whose stdout is not a terminal writes the secrets to the file instead of the log.
    const first = await startDaemon(env);
    assert.equal(await first.stop(), 0);
    assert.equal(statSync(secrets).mode & 0o777, 0o600);
    assert.match(first.output(), WARNING);
    // The admin token line is the one the README and the hints use: paste it (or source it) and the CLI works.
    const text = readFileSync(secrets, 'utf8');
    assert.match(text, /^export AIRLOCK_ADMIN_TOKEN=adm_[A-Za-z0-9_-]+$/m);
    assert.doesNotMatch(text, /^admin token:/m);
    assert.equal(text.match(/^recovery phrase: (.+)$/m)?.[1]?.split(' ').length, 24);

    const again = await startDaemon(env);
    assert.equal(await again.stop(), 0);
    assert.match(again.output(), WARNING);
    const [status, statusJson] = await Promise.all([runCli(['status'], env), runCli(['status', '--json'], env)]);
    assert.match(status.stderr, WARNING);
    assert.match(statusJson.stderr, WARNING);
    assert.equal(JSON.parse(statusJson.stdout).health.status, 'unreachable', 'stdout stays machine-readable');

    rmSync(secrets);
    const quiet = await runCli(['status'], env);
    assert.doesNotMatch(quiet.stderr, /first-run-secrets/);
    const quietStart = await startDaemon(env);
    assert.equal(await quietStart.stop(), 0);
    assert.doesNotMatch(quietStart.output(), /first-run-secrets/);
  });

  test('a first start beside a stale first-run-secrets.txt refuses before asking for anything and creates nothing; the old file is kept as it was', async () => {
    const staleDir = join(dir, 'stale');
    mkdirSync(staleDir, { mode: 0o700 });
    const stale = join(staleDir, 'first-run-secrets.txt');
    const oldText = '# Airlock first-run secrets.\nrecovery phrase: the phrase of a vault created before\nexport AIRLOCK_ADMIN_TOKEN=adm_old\n';
    writeFileSync(stale, oldText, { mode: 0o600 });
    const staleEnv = cliEnv({ AIRLOCK_DATA_DIR: staleDir, AIRLOCK_PASSPHRASE: PASSPHRASE });
    const refused = await runCli(['start'], staleEnv);
    assert.equal(refused.code, 1, `${refused.stdout}\n${refused.stderr}`);
    assert.match(refused.stderr, new RegExp(`^error \\[conflict\\]: ${stale} is left from an earlier first run`, 'm'));
    assert.match(refused.stderr, /hint: .*airlock restore/);
    assert.match(refused.stderr, /hint: .*remove it from the data directory and start again/);
    // Nothing was created: no vault, no store; the old secrets are untouched.
    assert.deepEqual(readdirSync(staleDir).filter((f) => f !== 'compile-cache'), ['first-run-secrets.txt']);
    assert.equal(readFileSync(stale, 'utf8'), oldText);

    // Once the old file is moved away, the first start writes the new vault's secrets to a new file.
    const kept = join(dir, 'first-run-secrets.old.txt');
    execFileSync('mv', [stale, kept]);
    const first = await startDaemon(staleEnv);
    assert.equal(await first.stop(), 0);
    assert.equal(readFileSync(stale, 'utf8').match(/^recovery phrase: (.+)$/m)?.[1]?.split(' ').length, 24);
    assert.equal(readFileSync(kept, 'utf8'), oldText);
  });
});

describe('PKCS#11 PIN file', { skip: softHsmSkip() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-pin-'));
  const token = softHsmSkip() ? undefined : createSoftHsmToken('airlock-cli-pin', '135790');
  after(() => {
    token?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('airlock start refuses a PIN file that others may read, naming the file and the chmod to run, never the PIN; at 0400 it starts', async () => {
    const dataDir = join(dir, 'data');
    const env = cliEnv({
      AIRLOCK_DATA_DIR: dataDir, AIRLOCK_PASSPHRASE: PASSPHRASE, SOFTHSM2_CONF: join(token!.dir, 'softhsm2.conf'),
      AIRLOCK_KEY_BACKEND: 'pkcs11', AIRLOCK_PKCS11_LIBRARY: token!.library, AIRLOCK_PKCS11_TOKEN_LABEL: token!.tokenLabel, AIRLOCK_PKCS11_PIN_FILE: token!.pinFile,
    });
    assert.equal((await runCli(['init'], env)).code, 0);
    chmodSync(token!.pinFile, 0o644);
    const refused = await startDaemon(env).then(async (d) => (await d.stop(), 'it started'), (e: Error & { output?: string }) => e.output ?? e.message);
    assert.match(refused, new RegExp(`error \\[hsm_login_failed\\]: The PKCS#11 PIN file ${token!.pinFile} is open to other users \\(mode 0644\\)`));
    assert.match(refused, new RegExp(`hint: .*chmod 400 ${token!.pinFile}`));
    assert.ok(!refused.includes('135790'), 'the PIN is never shown');

    chmodSync(token!.pinFile, 0o400);
    const daemon = await startDaemon(env);
    assert.equal(await daemon.stop(), 0);
  });
});

describe('compile cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-cli-cache-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  /** A fresh private TMPDIR per run, so the test sees whatever the CLI writes to the shared temp directory. */
  const help = (dataDir: string) => {
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    return runCli(['--help'], cliEnv({ TMPDIR: tmp, AIRLOCK_DATA_DIR: dataDir })).then((r) => ({ ...r, tmp }));
  };
  const privateDir = (name: string, mode = 0o700) => {
    const p = join(dir, name);
    mkdirSync(p, { mode });
    chmodSync(p, mode);
    return p;
  };

  test('compiled code is cached in <data dir>/compile-cache (0700, ours), never in the shared temp directory', async () => {
    const dataDir = privateDir('data');
    const r = await help(dataDir);
    assert.equal(r.code, 0);
    assert.deepEqual(readdirSync(r.tmp), [], 'nothing written to TMPDIR');
    const cache = lstatSync(join(dataDir, 'compile-cache'));
    assert.ok(cache.isDirectory());
    assert.equal(cache.mode & 0o777, 0o700);
    assert.equal(cache.uid, process.getuid!());
    assert.ok(readdirSync(join(dataDir, 'compile-cache')).length > 0, 'the cache is in use');
  });

  test('no cache where it could be planted: a symlinked or foreign cache directory, a data dir others can write, no data dir', async () => {
    const planted = privateDir('planted');
    const withLink = privateDir('with-link');
    symlinkSync(planted, join(withLink, 'compile-cache'));
    const open = privateDir('open', 0o777);
    const missing = join(dir, 'missing');
    const cases = [withLink, open, missing];
    if (process.getuid!() === 0) {
      // Root can hand the directory to another user: the owner check must refuse it.
      const foreign = privateDir('foreign');
      mkdirSync(join(foreign, 'compile-cache'), { mode: 0o700 });
      chownSync(join(foreign, 'compile-cache'), 65534, 65534);
      cases.push(foreign);
    }
    for (const dataDir of cases) {
      const r = await help(dataDir);
      assert.equal(r.code, 0, dataDir);
      assert.deepEqual(readdirSync(r.tmp), [], `nothing written to TMPDIR (${dataDir})`);
    }
    assert.deepEqual(readdirSync(planted), [], 'nothing written through the symlink');
    assert.ok(!existsSync(join(open, 'compile-cache')), 'no cache in a data dir others can write');
    assert.ok(!existsSync(missing), 'a command never creates the data dir for its cache');
    if (process.getuid!() === 0) assert.deepEqual(readdirSync(join(dir, 'foreign', 'compile-cache')), []);
  });
});
