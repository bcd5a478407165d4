import { describe, expect, it } from 'vitest';
import { barLine, createProgress, emptyTally, formatDuration, formatSummary, logLine } from '../../src/ingress/backfill/progress.ts';

describe('progress lines', () => {
  it('formats durations as m:ss or h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(75)).toBe('1:15');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Infinity)).toBe('--:--');
  });

  it('draws a bar with rate and ETA that fits the terminal', () => {
    const t = { ...emptyTally(), spam: 12 };
    const line = barLine('INBOX', 500, 2000, 1000, t, 80);
    expect(line).toMatch(/^INBOX \[#+-+\] 500\/2000 1,000 msg\/s ETA 0:02 spam 12$/);
    expect(line.length).toBeLessThanOrEqual(80);
  });

  it('logs a plain line with percent and ETA', () => {
    expect(logLine('Archive', 250, 1000, 50, emptyTally())).toBe('backfill: Archive: 250/1000 (25%) 50 msg/s, ETA 0:15, spam 0, errors 0');
  });

  it('summarises counts, and says a dry run changed nothing', () => {
    const t = { ...emptyTally(), scanned: 10, spam: 3, ham: 7, moved: 3, tooLarge: 1, errors: 2 };
    const s = formatSummary(t, 2000, true);
    expect(s).toContain('10 scanned in 0:02 (5 msg/s)');
    expect(s).toContain('spam 3, ham 7');
    expect(s).toContain('would be moved 3');
    expect(s).toContain('skipped too large 1, errors 2');
    expect(s).toContain('nothing was changed');
  });

  it('adds the process figures the bench reads: peak RSS and CPU per message', () => {
    const t = { ...emptyTally(), scanned: 1000, ham: 1000 };
    expect(formatSummary(t, 1000, false, { peakRssBytes: 100 * 1048576, cpuMs: 2000 })).toContain('peak RSS 100.0 MB, CPU 2.0 s, 2.00 ms/msg');
  });
});

describe('createProgress', () => {
  it('redraws in place on a terminal, at most every 100 ms, and always at the end', () => {
    let now = 0;
    let out = '';
    const p = createProgress({ write: (s) => (out += s), tty: true, now: () => now, columns: 100 });
    p.folder('INBOX', 3);
    now = 10;
    p.advance(1, emptyTally());
    now = 20;
    p.advance(1, emptyTally());
    now = 30;
    p.advance(1, emptyTally());
    p.finish();
    const frames = out.split('\r\x1b[2K').filter(Boolean);
    expect(frames.map((f) => f.match(/ (\d)\/3 /)?.[1])).toEqual(['1', '3', '3']);
    expect(out.endsWith('\n')).toBe(true);
  });

  it('writes plain lines, throttled, when not on a terminal', () => {
    let now = 0;
    const lines: string[] = [];
    const p = createProgress({ write: (s) => lines.push(s), tty: false, now: () => now, logEveryMs: 1000 });
    p.folder('INBOX', 4);
    now = 100;
    p.advance(1, emptyTally());
    now = 200;
    p.advance(1, emptyTally());
    now = 1500;
    p.advance(1, emptyTally());
    p.note('backfill: reconnecting');
    now = 1600;
    p.advance(1, emptyTally());
    expect(lines).toEqual([
      'backfill: INBOX: 4 messages to scan\n',
      expect.stringMatching(/^backfill: INBOX: 1\/4 \(25%\)/),
      expect.stringMatching(/^backfill: INBOX: 3\/4 \(75%\)/),
      'backfill: reconnecting\n',
      expect.stringMatching(/^backfill: INBOX: 4\/4 \(100%\)/),
    ]);
    expect(lines.join('')).not.toContain('\r');
  });
});
