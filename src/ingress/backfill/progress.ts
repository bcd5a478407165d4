// What a person watching a sweep sees: a one-line bar redrawn in place on a terminal, a log line every
// few seconds elsewhere (cron, CI, a pipe), and a summary at the end.

export interface Tally {
  scanned: number;
  spam: number;
  ham: number;
  moved: number;
  tagged: number;
  flagged: number;
  tooLarge: number;
  errors: number;
  /** Decisions of an interrupted run whose actions were applied again on resume. */
  resumed: number;
  reconnects: number;
}

export function emptyTally(): Tally {
  return { scanned: 0, spam: 0, ham: 0, moved: 0, tagged: 0, flagged: 0, tooLarge: 0, errors: 0, resumed: 0, reconnects: 0 };
}

export interface Progress {
  /** A folder starts; `total` messages are left to scan in it. */
  folder(name: string, total: number): void;
  /** `done` more messages of the current folder are finished. */
  advance(done: number, tally: Tally): void;
  /** A line that must not be torn by the bar (reconnects, warnings). */
  note(line: string): void;
  finish(): void;
}

export interface ProgressOptions {
  write: (text: string) => void;
  tty: boolean;
  /** Monotonic ms. */
  now: () => number;
  /** Terminal width for the bar. */
  columns?: number;
  /** Least time between two log lines when not on a terminal. */
  logEveryMs?: number;
}

const REDRAW_MS = 100;

export function createProgress(o: ProgressOptions): Progress {
  let name = '';
  let total = 0;
  let done = 0;
  let started = 0;
  let lastDraw = -Infinity;
  let drawn = false;
  const logEvery = o.logEveryMs ?? 5_000;

  const rate = () => {
    const secs = (o.now() - started) / 1000;
    return secs > 0 ? done / secs : 0;
  };
  const clear = () => {
    if (drawn) o.write('\r\x1b[2K');
    drawn = false;
  };
  const draw = (tally: Tally, force: boolean) => {
    const t = o.now();
    if (o.tty) {
      if (!force && t - lastDraw < REDRAW_MS) return;
      lastDraw = t;
      o.write('\r\x1b[2K' + barLine(name, done, total, rate(), tally, o.columns ?? 80));
      drawn = true;
    } else {
      if (!force && t - lastDraw < logEvery) return;
      lastDraw = t;
      o.write(logLine(name, done, total, rate(), tally) + '\n');
    }
  };
  let lastTally = { scanned: 0 } as Tally;

  return {
    folder(folderName, count) {
      clear();
      name = folderName;
      total = count;
      done = 0;
      started = o.now();
      lastDraw = -Infinity;
      if (!o.tty) o.write(`backfill: ${folderName}: ${count} message${count === 1 ? '' : 's'} to scan\n`);
    },
    advance(n, tally) {
      done += n;
      lastTally = tally;
      draw(tally, done >= total);
    },
    note(line) {
      clear();
      o.write(line + '\n');
    },
    finish() {
      if (o.tty && total > 0) {
        draw(lastTally, true);
        o.write('\n');
        drawn = false;
      }
    },
  };
}

export function formatRate(perSecond: number): string {
  // Thousands grouped by hand: the first toLocaleString() loads ICU data, ~50 ms inside the sweep.
  return `${String(Math.round(perSecond)).replace(/\B(?=(\d{3})+$)/g, ',')} msg/s`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function eta(done: number, total: number, perSecond: number): string {
  return perSecond > 0 ? formatDuration((total - done) / perSecond) : '--:--';
}

export function barLine(folder: string, done: number, total: number, perSecond: number, tally: Tally, columns: number): string {
  const pct = total > 0 ? Math.min(1, done / total) : 1;
  const tail = ` ${done}/${total} ${formatRate(perSecond)} ETA ${eta(done, total, perSecond)} spam ${tally.spam}`;
  const head = `${folder} `;
  const width = Math.max(10, Math.min(40, columns - head.length - tail.length - 3));
  const fill = Math.round(pct * width);
  return `${head}[${'#'.repeat(fill)}${'-'.repeat(width - fill)}]${tail}`;
}

export function logLine(folder: string, done: number, total: number, perSecond: number, tally: Tally): string {
  const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
  return `backfill: ${folder}: ${done}/${total} (${pct}%) ${formatRate(perSecond)}, ETA ${eta(done, total, perSecond)}, spam ${tally.spam}, errors ${tally.errors}`;
}

export interface ProcessFigures {
  peakRssBytes: number;
  /** User + system CPU of the whole process (worker threads included), ms. */
  cpuMs: number;
}

export function formatSummary(t: Tally, elapsedMs: number, dryRun: boolean, figures?: ProcessFigures): string {
  const secs = elapsedMs / 1000;
  const lines = [
    `backfill ${dryRun ? 'dry run ' : ''}summary: ${t.scanned} scanned in ${formatDuration(secs)} (${formatRate(secs > 0 ? t.scanned / secs : 0)})`,
    `  spam ${t.spam}, ham ${t.ham}`,
    `  ${dryRun ? 'would be ' : ''}moved ${t.moved}, tagged ${t.tagged}, flagged ${t.flagged}`,
    `  skipped too large ${t.tooLarge}, errors ${t.errors}`,
  ];
  if (t.resumed || t.reconnects) lines.push(`  resumed from an interrupted run ${t.resumed}, reconnects ${t.reconnects}`);
  if (figures) {
    const perMsg = t.scanned > 0 ? `, ${(figures.cpuMs / t.scanned).toFixed(2)} ms/msg` : '';
    lines.push(`  peak RSS ${(figures.peakRssBytes / 1048576).toFixed(1)} MB, CPU ${(figures.cpuMs / 1000).toFixed(1)} s${perMsg}`);
  }
  if (dryRun) lines.push('  dry run: nothing was changed on the server or in the database');
  return lines.join('\n');
}
