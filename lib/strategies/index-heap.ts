/**
 * A binary min-heap over the indexes 0..n-1 of a snapshot, ordered by a caller's `before(a, b)`
 * that reads the caller's own per-index keys. It remembers where each index sits, so after a key
 * changes `update(index)` restores order in O(log n).
 */
export class IndexHeap {
  readonly #heap: Int32Array;
  readonly #position: Int32Array;
  readonly #before: (a: number, b: number) => boolean;

  constructor(size: number, before: (a: number, b: number) => boolean) {
    this.#heap = new Int32Array(size);
    this.#position = new Int32Array(size);
    this.#before = before;
    for (let i = 0; i < size; i++) this.#heap[i] = this.#position[i] = i;
    for (let position = (size >>> 1) - 1; position >= 0; position--) this.#siftDown(position);
  }

  /** The index that comes first. */
  get top(): number {
    return this.#heap[0]!;
  }

  /** Restores order after the key of `index` changed. */
  update(index: number): void {
    const position = this.#position[index]!;
    if (this.#siftUp(position) === position) this.#siftDown(position);
  }

  /** Returns where the entry ended up. */
  #siftUp(position: number): number {
    const heap = this.#heap;
    const index = heap[position]!;
    while (position > 0) {
      const parent = (position - 1) >>> 1;
      if (!this.#before(index, heap[parent]!)) break;
      this.#place(heap[parent]!, position);
      position = parent;
    }
    this.#place(index, position);
    return position;
  }

  #siftDown(position: number): void {
    const heap = this.#heap;
    const index = heap[position]!;
    const half = heap.length >>> 1;
    while (position < half) {
      let child = 2 * position + 1;
      if (child + 1 < heap.length && this.#before(heap[child + 1]!, heap[child]!)) child++;
      if (!this.#before(heap[child]!, index)) break;
      this.#place(heap[child]!, position);
      position = child;
    }
    this.#place(index, position);
  }

  #place(index: number, position: number): void {
    this.#heap[position] = index;
    this.#position[index] = position;
  }
}
