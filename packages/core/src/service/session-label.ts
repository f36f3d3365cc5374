import { AirlockError } from '../errors.ts';

/**
 * Control (Cc: CR, LF, ESC, …) and format (Cf: bidi overrides, zero-width characters, …) characters. A session
 * label is shown to operators in listings and trees (`airlock session tree`), and an agent writes the labels of
 * the child sessions it derives: such a character could redraw or reorder what the operator reads.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}]/u;

/** Refuses (`invalid_request`, before anything is written) a session label holding a control or format character. */
export function assertSessionLabel(label: string | undefined): void {
  if (label !== undefined && UNPRINTABLE.test(label)) {
    throw new AirlockError('invalid_request', 'label: control and format characters (line breaks, CR, ESC, bidi controls, zero-width characters) are not allowed.');
  }
}
