// A node:test reporter that ends the run at the first failing test: one failure kills a mutant, and the
// rest of the suite would only cost time (node:test has no --bail).
import type { TestEvent } from 'node:test/reporters';

export default async function* bailReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type === 'test:fail') {
      yield `first failure: ${event.data.name}\n`;
      process.exit(1);
    }
  }
}
