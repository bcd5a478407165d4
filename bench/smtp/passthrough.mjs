// The SMTP door with scanning switched off: receive → re-inject, nothing else. bench/smtp/run.mjs runs it
// beside the real `atlas-email serve --smtp` to show what the door itself costs.
// Usage: node bench/smtp/passthrough.mjs PORT NEXT_HOP_PORT
import { defaultConfig } from '../../dist/core/config.js';
import { startSmtpDoor } from '../../dist/ingress/smtp.js';

const [port, nextHop] = process.argv.slice(2).map(Number);
const door = await startSmtpDoor({ host: '127.0.0.1', port, nextHop: { host: '127.0.0.1', port: nextHop }, scan: null, config: defaultConfig() });
process.stderr.write(`passthrough listening on ${door.address}\n`);
process.once('SIGTERM', () => door.close().then(() => process.exit(0)));
