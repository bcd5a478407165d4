// bench/pool's ceiling: a thread that classifies its own copy of the corpus with no pool, no messages
// and no main thread in the way. Started in ones and twos at the same moment; how much slower two are
// than one is what the two cores themselves (shared caches, memory bandwidth, the hypervisor) allow.
import { parentPort, workerData } from 'node:worker_threads';
import { classifyMessage, loadModel } from '../../dist/core/classify.js';

const { messages, modelBytes, passes, start } = workerData;
const model = loadModel(modelBytes);
// Warm-up pass, so both threads' JIT has settled before the clock starts.
for (const m of messages) classifyMessage(m, model);
parentPort.postMessage('ready');
// All threads of a run wait for one shared flag and then start together.
Atomics.wait(start, 0, 0);
const t0 = performance.now();
for (let p = 0; p < passes; p++) for (const m of messages) classifyMessage(m, model);
parentPort.postMessage({ seconds: (performance.now() - t0) / 1000, count: passes * messages.length });
