// Every limit in one place, each with the reason it exists. Doors and stages import from here;
// config may lower or raise the user-facing ones (maxMessageBytes, timeouts, queue lengths).

export const limits = {
  /** Largest message accepted by any door. Postfix's default message_size_limit is 10 MB. */
  maxMessageBytes: 25 * 1024 * 1024,
  /** The quick look reads at most this much of the header block; the rest is ignored, not an error. */
  maxHeaderBytes: 256 * 1024,
  /** Headers past this count are ignored by the quick look (10,000-header bombs stay cheap). */
  maxHeaderCount: 1000,
  /** One header (with folded lines) longer than this is cut when read (1 MB header lines). */
  maxHeaderValueBytes: 16 * 1024,
  /** Early-exit body patterns look at this prefix only: high-confidence phrases sit near the top. */
  earlyBodyScanBytes: 64 * 1024,
  /** The full parse reads text from at most this many bytes of decoded text. */
  maxTextBytes: 512 * 1024,
  /** MIME nesting deeper than this is not descended (deep-nesting bombs). */
  maxMimeDepth: 20,
  /** MIME parts past this count are not parsed. */
  maxMimeParts: 500,
  /** Tokens per message fed to the model; later tokens add little and cost time. */
  maxTokens: 20_000,
  /** URLs collected per message. */
  maxUrls: 500,
  /** Deadline of one classification task in the worker pool, ms. */
  classifyTimeoutMs: 5_000,
  /** Whole scan deadline seen by a door, ms (must be below Postfix's 300 s smtp_data_done_timeout). */
  scanTimeoutMs: 10_000,
  /**
   * Young-generation heap of each classifier worker, MB. A classification leaves only short-lived
   * garbage, so a small nursery is scavenged as cheaply as V8's default (16 MB semi-spaces, sized for
   * throughput of large apps), and two workers hold ~45 MB less under load (bench/pool, bench/http RSS).
   */
  workerYoungGenerationMb: 8,
  /**
   * How much lower the classifier workers run than the main thread (Linux nice steps, 0 = same). The
   * main thread is the one serial stage (every socket, every hand-off); a worker woken with a task would
   * otherwise preempt it on a shared core, and the door's replies, the next reads and the next hand-offs
   * wait while cores sit idle later. Workers still get every core the main thread leaves
   * (bench/README.md, smtp, session 5: the filter takes 4–6% more of the cores, 6–10% more messages a
   * second at 32–64 connections; the price is ~13 ms more HTTP p99 at half load, where 0 is better).
   */
  workerNice: 10,
  /** Tasks waiting for a worker before back-pressure answers tempfail. */
  poolQueueLength: 1_000,
  /** Verdicts waiting to be written before the log drops and counts them. */
  logQueueLength: 100_000,
  /** Log batch size and flush window (ATLAS_BULK_BATCH_SIZE overrides the size). */
  logBatchSize: 500,
  logFlushMs: 250,
  /** Per-lookup and per-message DNS budgets for authentication checks, ms. */
  dnsLookupTimeoutMs: 1_500,
  dnsBudgetMs: 3_000,
  /** Idle/slow client cut-off on network doors, ms. */
  socketTimeoutMs: 60_000,
  /** X-Spam-Level stars stop here, as SpamAssassin's: a 300-point verdict must not make a 300-byte header. */
  spamLevelMaxStars: 50,
  /**
   * Connect, greeting and per-reply deadline towards the SMTP next hop, ms. Postfix waits 600 s
   * (smtp_data_done_timeout) for our answer; scan + re-injection must finish well inside it.
   */
  nextHopTimeoutMs: 30_000,
  /** Pooled connections to the next hop; Postfix's "scan" transport defaults to 10 parallel deliveries. */
  nextHopConnections: 20,
  /** Messages sent over one pooled next-hop connection before it is renewed (bounds smtpd process age). */
  nextHopMessagesPerConnection: 1_000,
  /**
   * On shutdown, how long in-flight SMTP transactions may take before their connections are cut, ms.
   * An unanswered transaction is safe (Postfix retries it), so this only bounds the wait.
   */
  smtpDrainTimeoutMs: 45_000,
  /** A verdict-log write waits this long for another process's lock, in the writer thread, ms. */
  storeBusyTimeoutMs: 2_000,
  /** Longest wait between retries while the verdict log is not writable, ms. */
  storeRetryMaxMs: 30_000,
  /** Shutdown waits this long for an unwritable verdict log to recover before giving up, ms. */
  storeCloseTimeoutMs: 10_000,
  /**
   * Most rows one verdict-log transaction takes when batches queue up behind a write (group commit).
   * Every commit rewrites about one sender-domain index page per distinct domain, so larger transactions
   * under load cost less per row (bench/store); small enough that one commit takes tens of milliseconds.
   * Crash loss does not grow: the rows it joins were already waiting in memory, and now commit sooner.
   */
  storeGroupCommitRows: 5_000,
  /** Retention deletes this many rows per transaction so writers never wait long for it. */
  retentionBatchRows: 1_000,
  /** How often serve applies log.retainDays, ms. */
  retentionIntervalMs: 3_600_000,
  /** Largest history page (GET /v1/verdicts, atlas-email history). */
  historyMaxLimit: 1_000,
  /**
   * A SPAMC request (head and body) must arrive within this, ms: spamc sends it in one write, so only a
   * stalled or hostile client gets near it, and it must not hold a connection slot for ever.
   */
  spamdRequestTimeoutMs: 120_000,
  /** Open SPAMC connections; past it new ones get EX_TEMPFAIL (spamd queues in the backlog instead). */
  spamdMaxClients: 500,
  /** After answering, how long the SPAMC door drains a client that keeps sending before cutting it, ms. */
  spamdDrainMs: 5_000,
  /**
   * UIDs per IMAP backfill batch: one checkpoint commit each. Small enough that a killed sweep redoes
   * little, large enough that the per-batch round trips (size fetch, move, commit) stay cheap.
   */
  backfillBatchSize: 500,
  /** Share of the memory budget (ATLAS_MEMORY_LIMIT_MB) a backfill batch may hold as message sources;
   * the rest covers scan copies, the classifier's queue and the runtime itself. */
  backfillSourceShare: 0.25,
  /** Reconnects in a row without progress before a backfill gives up (a dead server, not a blip). */
  backfillReconnectAttempts: 8,
  /** First and largest wait between backfill reconnects, ms (doubling in between). */
  backfillBackoffBaseMs: 500,
  backfillBackoffMaxMs: 30_000,
  /** An HTTP client must finish its request headers within this, ms; then 408 and close (slowloris). */
  httpHeadersTimeoutMs: 10_000,
  /**
   * The whole HTTP request (headers and a message up to maxMessageBytes) must arrive within this, ms;
   * a stalled upload must not hold a connection and a growing buffer for ever.
   */
  httpRequestTimeoutMs: 60_000,
  /** An idle keep-alive HTTP connection is closed after this, ms (load balancers reuse theirs sooner). */
  httpKeepAliveTimeoutMs: 5_000,
  /** On shutdown, in-flight HTTP requests get this long before their connections are cut, ms (> scanTimeoutMs). */
  httpDrainTimeoutMs: 15_000,
  /** HTML rendered to text per part, chars: spam shows its hand early; 1 MB HTML bodies stay cheap. */
  maxHtmlChars: 256 * 1024,
  /** Visible text tokenized per message, chars: later text adds little evidence and costs time. */
  maxTokenTextChars: 64 * 1024,
  /**
   * WAL pages (4 KiB) the verdict log lets accumulate before it copies them into the database file.
   * Each batch rewrites one sender-domain index page per distinct domain; a longer WAL lets one
   * checkpoint copy such a page once instead of once per few batches (measured in bench/store).
   */
  storeWalCheckpointPages: 10_000,
  /** Size the verdict log's WAL file is cut back to after a checkpoint, bytes (it is reused, not regrown). */
  storeWalSizeLimitBytes: 64 * 1024 * 1024,
  /**
   * Largest milter packet accepted, bytes. Postfix sends bodies in 64 KB chunks and headers up to its
   * header_size_limit (100 KB); a longer length prefix means a client that is not an MTA (a stray HTTP
   * request reads as a 1.2 GB packet) and the connection is closed instead of buffered.
   */
  milterMaxPacketBytes: 1024 * 1024,
} as const;

export type Limits = typeof limits;
