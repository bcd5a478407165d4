import { describe, expect, it } from 'vitest';
import { announceThread, cancelTask, createBoard, endTask, MAX_TASK_ID, resetTask, runningThread, startTask } from '../../src/pool/board.ts';

describe('board', () => {
  it('tells which thread runs a task, and nothing once it ended', () => {
    const board = createBoard(2);
    announceThread(board, 1, 11);
    announceThread(board, 2, 22);
    resetTask(board, 7);
    expect(startTask(board, 2, 7)).toBe(true);
    expect(runningThread(board, 7)).toBe(22);
    expect(cancelTask(board, 7)).toBe(22);
    endTask(board, 2);
    expect(runningThread(board, 7)).toBeNull();
  });

  it('makes a worker skip a task cancelled before it started', () => {
    const board = createBoard(1);
    announceThread(board, 1, 5);
    resetTask(board, 3);
    expect(cancelTask(board, 3)).toBeNull();
    expect(startTask(board, 1, 3)).toBe(false);
    expect(runningThread(board, 3)).toBeNull();
    // Other ids, including those sharing a word of the bitmap, are untouched.
    resetTask(board, 4);
    expect(startTask(board, 1, 4)).toBe(true);
  });

  it('clears a reused id, up to the largest', () => {
    const board = createBoard(1);
    cancelTask(board, MAX_TASK_ID);
    resetTask(board, MAX_TASK_ID);
    expect(startTask(board, 1, MAX_TASK_ID)).toBe(true);
  });
});
