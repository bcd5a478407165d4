// Bench-only worker: the real classifier worker, plus a heap report every 1,000 messages on a
// BroadcastChannel, so the RSS run can tell worker heap growth from allocator noise.
import { BroadcastChannel, threadId } from 'node:worker_threads';
import classifyTask from '../../dist/pool/worker.js';

const channel = new BroadcastChannel('atlas-bench-heap');
channel.unref();
let messages = 0;

export default function probedTask(task) {
  const reply = classifyTask(task);
  const before = messages;
  messages += task.items.length;
  if (Math.floor(messages / 1000) !== Math.floor(before / 1000)) {
    const { heapUsed, external, arrayBuffers } = process.memoryUsage();
    channel.postMessage({ threadId, messages, heapUsed, external, arrayBuffers });
  }
  return reply;
}
