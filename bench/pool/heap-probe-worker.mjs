// Bench-only worker: the real classifier worker, plus a heap report every 1,000 tasks on a
// BroadcastChannel, so the RSS run can tell worker heap growth from allocator noise.
import { BroadcastChannel, threadId } from 'node:worker_threads';
import classifyTask from '../../dist/pool/worker.js';

const channel = new BroadcastChannel('atlas-bench-heap');
channel.unref();
let tasks = 0;

export default function probedTask(task) {
  const reply = classifyTask(task);
  if (++tasks % 1000 === 0) {
    const { heapUsed, external, arrayBuffers } = process.memoryUsage();
    channel.postMessage({ threadId, tasks, heapUsed, external, arrayBuffers });
  }
  return reply;
}
