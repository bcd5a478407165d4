// Run after any "npm install" that rewrites package-lock.json (npm run lock:fix).
// Adds lock entries for optional platform packages the registry here does not serve (other OS/CPU builds
// of deno and rollup), so `npm ci` sees package.json and the lock in sync; npm skips them by os/cpu/libc.
import { readFileSync, writeFileSync } from 'node:fs';
const file = process.argv[2] ?? 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const pk = lock.packages;
let added = 0;
for (const [where, entry] of Object.entries(pk)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (pk[key]) continue;
    const id = name.split('/').pop();
    const os = ['darwin', 'win32', 'linux', 'android', 'freebsd', 'openbsd', 'openharmony', 'sunos', 'aix'].find((o) => id.includes(o));
    const cpu = ['arm64', 'x64', 'ia32', 'arm', 'loong64', 'ppc64', 'riscv64', 's390x'].find((c) => new RegExp(`(^|-)${c}(-|$)`).test(id));
    const libc = id.includes('musl') ? 'musl' : id.includes('gnu') || id.includes('glibc') ? 'glibc' : undefined;
    pk[key] = { version, dev: entry.dev, optional: true, ...(os ? { os: [os] } : {}), ...(cpu ? { cpu: [cpu] } : {}), ...(libc ? { libc: [libc] } : {}) };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(pk).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added} optional platform entries`);
