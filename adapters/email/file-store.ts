/**
 * Where the bytes of inbound mail files live: behind a small interface, so a store other than a local
 * directory (an S3-like bucket) can be added without touching the rest. Redis keeps only the metadata
 * (see files.ts); the bytes never go into the Redis that holds the queues.
 */
import { createReadStream } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";

export interface BlobStore {
  /** Stores `content` under `id` (a new, unguessable id each time); whole or not at all. */
  write(id: string, content: Buffer): Promise<void>;
  /** The content of `id` as a stream, or null when it is not there. */
  read(id: string): Promise<Readable | null>;
  /** Removes `id`; nothing happens when it is already gone. */
  remove(id: string): Promise<void>;
}

/** Ids are base64url tokens; anything else never becomes a path. */
const ID = /^[\w-]{16,64}$/;

/**
 * Files in a local directory, spread over subdirectories by the id's first two characters. Written to a
 * temporary name and renamed, so a reader never sees half a file; readable by the gateway's user only.
 * Several instances share files only when they share the directory (a network file system).
 */
export class DirectoryStore implements BlobStore {
  constructor(private readonly dir: string) {}

  private pathOf(id: string): string {
    if (!ID.test(id)) throw new RangeError(`not a file id: ${JSON.stringify(id)}`);
    return path.join(this.dir, id.slice(0, 2), id);
  }

  async write(id: string, content: Buffer): Promise<void> {
    const file = this.pathOf(id);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const temporary = `${file}.part`;
    try {
      await writeFile(temporary, content, { mode: 0o600, flag: "wx" });
      await rename(temporary, file);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  }

  async read(id: string): Promise<Readable | null> {
    const stream = createReadStream(this.pathOf(id));
    // Opening is asynchronous: wait for it, so a missing file is a null, not an error mid-answer.
    return new Promise((resolve, reject) => {
      stream.once("open", () => resolve(stream));
      stream.once("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") resolve(null);
        else reject(err);
      });
    });
  }

  async remove(id: string): Promise<void> {
    await rm(this.pathOf(id), { force: true });
  }
}
