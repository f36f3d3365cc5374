// htm bound to Preact: JSX-like templates in plain JavaScript, no build step. htm parses the template
// strings itself (no eval), which the console's CSP (no 'unsafe-eval') requires.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
