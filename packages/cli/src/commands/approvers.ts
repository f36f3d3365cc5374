import { rmSync } from 'node:fs';
import { AirlockError } from '@airlock/core';
import { approverPublicKey, generateApproverKey } from '@airlock/sdk/approvals';
import type { Command } from '../context.ts';
import { printJson, table } from '../format.ts';
import { need, usage, UsageError } from '../args.ts';
import { readOwnerOnlyFile } from '../passphrase.ts';

interface ApproverJson { id: string; name: string; publicKey: string; groups: string[]; agents: string[]; status: string; createdAt: string }

/** What `approver add` writes (0600): the approver's own credential. Airlock keeps only the public key. */
export interface ApproverKeyFile {
  type: 'airlock-approver-key';
  approver: string;
  id: string;
  publicKey: string;
  secretKey: string;
}

export const approverCommand: Command = {
  name: 'approver',
  summary: 'add | list | disable the people who vote on quorum approvals',
  usage: [
    'airlock approver add <name> --groups ops[,treasury] [--agents <agent,...>] [--key-out FILE | --key-out -]',
    '    makes an Ed25519 key pair, registers the public key, writes the private key to FILE (0600, default',
    '    ./<name>.approver-key.json; never overwritten) or prints it once with --key-out -',
    'airlock approver list',
    'airlock approver disable <name>',
  ].join('\n'),
  options: { groups: { type: 'string' }, agents: { type: 'string' }, 'key-out': { type: 'string' } },
  async run(ctx, { values, positionals }) {
    const [sub, name] = positionals;
    if (!['add', 'list', 'disable'].includes(sub ?? '')) throw usage(this.usage);
    const http = ctx.admin();
    switch (sub) {
      case 'add': {
        const approver = need(name, 'name');
        if (!values.groups) throw new UsageError('--groups: name at least one group, e.g. --groups ops');
        const groups = String(values.groups).split(',').filter(Boolean);
        const agents = values.agents ? String(values.agents).split(',').filter(Boolean) : undefined;
        const key = generateApproverKey();
        const out = values['key-out'] === undefined ? `./${approver}.approver-key.json` : String(values['key-out']);
        const file = (id: string): ApproverKeyFile => ({ type: 'airlock-approver-key', approver, id, publicKey: key.publicKey, secretKey: key.secretKey });
        // The file exists (0600, never over another, synced to disk) before the key is registered, and is then replaced
        // atomically with the id: a key that works is never lost, not even to a crash between the two writes (the
        // second one truncated the file and wrote it again in place: found by review). Loaded here, not at the top:
        // the keys package is what every other CLI command does without.
        const { replaceFileAtomically, writeNewFileAtomically } = await import('@airlock/keys');
        if (out !== '-') await writeNewFileAtomically(out, JSON.stringify(file('pending'), null, 2) + '\n', 0o600);
        let created: ApproverJson;
        try {
          created = (await http.request<ApproverJson>('POST', '/v1/approvers', { name: approver, publicKey: key.publicKey, groups, ...(agents ? { agents } : {}) })).body;
        } catch (e) {
          if (out !== '-') rmSync(out, { force: true });
          throw e;
        }
        if (out !== '-') await replaceFileAtomically(out, JSON.stringify(file(created.id), null, 2) + '\n', 0o600);
        if (ctx.json) return printJson({ approver: created, ...(out === '-' ? { key: file(created.id) } : { keyFile: out }) });
        console.log(`approver ${created.name} (${created.id}) in ${created.groups.join(', ')}${created.agents.length ? `, linked to ${created.agents.join(', ')}` : ''}`);
        if (out === '-') {
          console.log('PRIVATE KEY FILE (shown once; save it as a 0600 file and give it to the approver only):');
          console.log(JSON.stringify(file(created.id)));
        } else console.log(`private key written to ${out} (0600): give it to ${created.name} only; Airlock keeps the public key`);
        return;
      }
      case 'list': {
        const { body } = await http.request<{ approvers: ApproverJson[] }>('GET', '/v1/approvers');
        if (ctx.json) return printJson(body);
        return console.log(table(body.approvers.map((a) => ({ ...a, groups: a.groups.join(','), agents: a.agents.join(',') || '-' })), ['id', 'name', 'groups', 'agents', 'status', 'createdAt']));
      }
      case 'disable': {
        const { body } = await http.request<ApproverJson>('POST', `/v1/approvers/${encodeURIComponent(need(name, 'name'))}/disable`);
        return ctx.json ? printJson(body) : console.log(`${body.name}: ${body.status}`);
      }
      default:
        throw usage(this.usage);
    }
  },
};

/**
 * Reads an approver key file (owner-only, as every secret file the CLI reads: found by review, this one and the
 * export password file were read whatever their mode) and checks that its secret key is the one of its public key.
 */
export function readApproverKey(path: string): ApproverKeyFile {
  const text = readOwnerOnlyFile(path, '--key');
  let parsed: Partial<ApproverKeyFile>;
  try {
    parsed = JSON.parse(text) as Partial<ApproverKeyFile>;
  } catch {
    throw new AirlockError('invalid_request', 'The --key file cannot be read as an approver key file.');
  }
  const ok = parsed.type === 'airlock-approver-key' && typeof parsed.approver === 'string' && typeof parsed.secretKey === 'string' && /^[0-9a-f]{64}$/.test(parsed.secretKey) && approverPublicKey(parsed.secretKey) === parsed.publicKey;
  // Never echo the file's content: it holds a private key.
  if (!ok) throw new AirlockError('invalid_request', 'The --key file is not an approver key file written by `airlock approver add` (or its keys do not match).');
  return parsed as ApproverKeyFile;
}
