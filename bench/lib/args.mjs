// Bench command lines are `--name value` pairs and bare `--switch`es; nothing more is needed.

/** The word after `--name`, or `fallback` when the flag is not given. */
export function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

/** flag() as a number. */
export function numberFlag(name, fallback) {
  const value = flag(name);
  return value === undefined ? fallback : Number(value);
}

/** True when the bare `--name` is on the command line. */
export function hasFlag(name) {
  return process.argv.includes(`--${name}`);
}
